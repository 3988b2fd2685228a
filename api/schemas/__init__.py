"""Marshmallow schemas: the request and response shapes published in the OpenAPI document."""
