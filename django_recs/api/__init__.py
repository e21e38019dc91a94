"""The JSON endpoints: recommendation lists for cached pages, JavaScript storefronts and apps.

- :mod:`.views` — ``similar/<app_label>.<model>/<pk>/``, ``recommended/``,
  ``popular/`` and ``openapi.json``: parse, call ``django_recs.similar_to`` /
  ``recommended_for``, answer;
- :mod:`.parameters` — the query and path parameters, validated;
- :mod:`.serialisation` — a list as JSON (API_SERIALIZER for each item);
- :mod:`.caching` — public lists' ETag and Cache-Control, private lists' headers;
- :mod:`.openapi` — the OpenAPI 3 document of the endpoints;
- :mod:`.errors` — every error as an ``application/problem+json`` body.

The API sits beside the template tags: it calls the same public functions
(feedback's lists, so impressions and click tokens come from there) and
never reads the tables itself. See docs/api.md.
"""
