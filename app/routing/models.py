"""Routing tables (versioned), their ordered rules, and the decision taken for each mention."""

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, utcnow


class RoutingTable(Base):
    __tablename__ = "routing_tables"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    active: Mapped[bool] = mapped_column(default=False)
    checksum: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    rules: Mapped[list["RoutingRule"]] = relationship(
        order_by="RoutingRule.position", lazy="selectin", cascade="all, delete-orphan"
    )


class RoutingRule(Base):
    __tablename__ = "routing_rules"
    __table_args__ = (
        UniqueConstraint("table_id", "position"),
        UniqueConstraint("table_id", "name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    table_id: Mapped[int] = mapped_column(ForeignKey("routing_tables.id", ondelete="CASCADE"))
    position: Mapped[int]
    name: Mapped[str] = mapped_column(String(100))
    conditions: Mapped[dict[str, Any]]
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    priority: Mapped[str | None] = mapped_column(String(2))
    tags: Mapped[dict[str, Any]]


class RoutingDecision(Base):
    __tablename__ = "routing_decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    mention_id: Mapped[int] = mapped_column(
        ForeignKey("mentions.id", ondelete="CASCADE"), unique=True
    )
    table_version: Mapped[int]
    rule_id: Mapped[int] = mapped_column(ForeignKey("routing_rules.id"))
    rule_name: Mapped[str] = mapped_column(String(100))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    priority: Mapped[str | None] = mapped_column(String(2))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
