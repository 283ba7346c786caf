"""Task events: producers call ``publish_task_event``; consumers subscribe to the hub."""
