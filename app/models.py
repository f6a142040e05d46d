"""Every table of every domain, imported so that the metadata is complete (migrations, tests)."""


def import_all() -> None:
    from app.access import models as access  # noqa: F401
    from app.accounts import models as accounts  # noqa: F401
    from app.classify import models as classify  # noqa: F401
    from app.delivery import models as delivery  # noqa: F401
    from app.ingest import models as ingest  # noqa: F401
    from app.outbox import models as outbox  # noqa: F401
    from app.routing import models as routing  # noqa: F401
    from app.teams import models as teams  # noqa: F401
    from app.tickets import models as tickets  # noqa: F401
    from app.x import models as x  # noqa: F401
