"""HTTP routes of the routing table: read, replace (a new version), list versions, explain."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from sqlalchemy.orm import Session

from app.access.dependencies import RoutingWriter
from app.accounts import service as accounts
from app.classify.language import guess_language
from app.classify.service import Classifier
from app.db import get_read_session, get_session, utcnow
from app.errors import InvalidInput
from app.routing import service
from app.routing.rules import MentionFacts
from app.routing.schemas import ExplainIn, ExplainRead, TableRead, TableSpec, VersionRead

router = APIRouter(prefix="/v1/routing", tags=["routing"])
SessionDep = Annotated[Session, Depends(get_session)]
ReadSessionDep = Annotated[Session, Depends(get_read_session)]


@router.get("/table", response_model_exclude_none=True)
def get_table(
    session: ReadSessionDep,
    caller: RoutingWriter,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> TableRead:
    """The active table, or a stored `version`."""
    return service.read_table(session=session, version=version)


@router.put(
    "/table",
    status_code=status.HTTP_201_CREATED,
    response_model_exclude_none=True,
    responses={200: {"model": TableRead, "description": "Same as the active table: unchanged."}},
)
def put_table(
    spec: TableSpec,
    response: Response,
    session: SessionDep,
    reader: ReadSessionDep,
    caller: RoutingWriter,
) -> TableRead:
    """Validate the table and make it the active version (201); the same table again is 200."""
    table, changed = service.apply_table(session=session, spec=spec, source=f"api:{caller.name}")
    session.commit()
    if not changed:
        response.status_code = status.HTTP_200_OK
    return service.read_table(session=reader, version=table.version)


@router.get("/versions")
def list_versions(session: ReadSessionDep, caller: RoutingWriter) -> list[VersionRead]:
    """Every version of the table, newest first."""
    return list(service.list_versions(session=session))


@router.post("/explain")
def explain(
    mention: ExplainIn, request: Request, session: ReadSessionDep, caller: RoutingWriter
) -> ExplainRead:
    """The rule this mention would hit and why every earlier rule did not; nothing is stored."""
    account = accounts.get(session=session, handle=mention.account)
    classifier: Classifier = request.app.state.classifier
    label, probability, triage, version = _classification(mention, classifier)
    lang = mention.lang.lower() if mention.lang else guess_language(mention.text)
    facts = MentionFacts(
        label=label,
        probability=probability,
        triage=triage,
        account_handle=account.handle,
        account_kind=account.kind.value,
        lang=lang,
        text=mention.text,
        author_handle=mention.author,
        author_verified=mention.author_verified,
        author_followers=mention.author_followers,
        at=mention.at or utcnow(),
    )
    table = service.load_table(session=session, version=mention.version)
    return ExplainRead(
        label=label,
        probability=probability,
        triage=triage,
        model_version=version,
        lang=lang,
        explanation=service.explain(table, facts),
    )


def _classification(
    mention: ExplainIn, classifier: Classifier
) -> tuple[str, float, bool, str | None]:
    """The model's verdict, or the label the caller chose (triage as the threshold says)."""
    if mention.label is None:
        [verdict] = classifier.classify([mention.text])
        return verdict.label, verdict.probability, verdict.triage, verdict.model_version
    if mention.label not in classifier.labels:
        raise InvalidInput(
            f"unknown label {mention.label!r}", details={"labels": list(classifier.labels)}
        )
    probability = 1.0 if mention.probability is None else mention.probability
    return mention.label, probability, probability < classifier.threshold, None
