"""REST API v1 (Django REST framework, OpenAPI by drf-spectacular)."""
