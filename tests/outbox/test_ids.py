"""Event ids: unique, and ordered by time so that new events go at the end of the ids' index."""

import time
import uuid

from app.outbox.service import new_event_id


def test_an_event_id_is_a_uuid_of_version_7() -> None:
    event_id = new_event_id()

    assert event_id.startswith("evt_")
    parsed = uuid.UUID(event_id.removeprefix("evt_"))
    assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)
    assert event_id == f"evt_{parsed.hex}"


def test_an_event_id_starts_with_the_time_it_was_made() -> None:
    before = time.time_ns() // 1_000_000
    milliseconds = int(new_event_id()[4:16], 16)
    after = time.time_ns() // 1_000_000

    assert before <= milliseconds <= after


def test_later_ids_sort_after_earlier_ones_and_none_repeats() -> None:
    earlier = [new_event_id() for _ in range(1000)]
    time.sleep(0.002)  # the next millisecond at least
    later = [new_event_id() for _ in range(1000)]

    assert max(earlier) < min(later)
    assert len(set(earlier + later)) == 2000
