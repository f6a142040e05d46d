"""The yardstick of bench/ingest.py: FastAPI alone, validating the body Aiguilleur ingests.

One `POST /v1/mentions` that validates the JSON body as a `MentionIn` (the same Pydantic model
as the real endpoint) and returns it. No database, no model, no authentication: what FastAPI
itself does per request on this machine. Run as `uvicorn bench.bare:app`.
"""

from fastapi import FastAPI

from app.ingest.schemas import MentionIn

app = FastAPI(title="bare")


@app.post("/v1/mentions", status_code=201)
async def echo(mention: MentionIn) -> MentionIn:
    """The body, validated and returned."""
    return mention
