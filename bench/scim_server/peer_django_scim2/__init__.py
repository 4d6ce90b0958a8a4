"""A minimal project serving django-scim2, set up as its documentation says."""
