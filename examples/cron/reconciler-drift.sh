#!/bin/sh
# Drift check for a host without CI: run it from cron or from the systemd timer beside it.
#
#   RECONCILER_REPO   checkout of the manifests repository (default: /srv/reconciler)
#   RECONCILER_ENV    file of VCITA_* variables, incl. VCITA_STAFF_TOKEN (default:
#                     /etc/reconciler/vcita.env; chmod 600, owned by the user running this)
#   ALERT_EMAIL       if set, remote drift and errors are mailed there (needs mail(1))
#
# Exit status is reconciler's: 0 in sync, 2 remote drift, 3 only pending changes, 1 error.
set -u

repo="${RECONCILER_REPO:-/srv/reconciler}"
env_file="${RECONCILER_ENV:-/etc/reconciler/vcita.env}"
if [ -r "$env_file" ]; then
    set -a          # export every variable the file sets; the file is never echoed
    # shellcheck source=/dev/null  # a site file (VCITA_* variables), not part of this repository
    . "$env_file"
    set +a
fi
if ! command -v reconciler > /dev/null 2>&1; then
    echo "reconciler-drift: reconciler is not on PATH ($PATH); set PATH in the crontab or the unit" >&2
    exit 1
fi
cd "$repo" || exit 1
if [ -d .git ]; then
    git pull --ff-only --quiet || echo "reconciler-drift: git pull failed; checking the current checkout" >&2
fi

reconciler drift manifests --format text --out drift.json > drift.txt
code=$?
cat drift.txt

case "$code" in
    0|3) ;;
    *)
        if [ -n "${ALERT_EMAIL:-}" ]; then
            subject="reconciler drift on $(hostname): exit $code"
            mail -s "$subject" "$ALERT_EMAIL" < drift.txt || echo "reconciler-drift: mail failed" >&2
        fi
        ;;
esac
exit "$code"
