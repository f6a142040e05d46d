"""Business-hours calendars: pure logic, no database."""
