"""Task events: producers call ``publish_event`` (delivered on commit to the process's
``EventBus``); live clients subscribe to the hub, which subscribes to the bus."""
