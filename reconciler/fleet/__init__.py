"""Many businesses in one run (``--all``): ``businesses`` (the folders, their targets,
sharding, planning one business) and ``apply`` (applying each business's saved plan)."""
