"""The REST API of the operations platform (FastAPI), every route under ``/api/v1``.

``stratforge.api.app.create_app()`` builds the application (``uvicorn
stratforge.api.app:create_app --factory``); one router module per resource, with its request
and response models in the ``*_models`` module next to it. See docs/api.md.
"""
