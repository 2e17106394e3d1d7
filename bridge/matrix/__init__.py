"""Everything that talks to the homeserver: the bot, plans applied to rooms, cards sent."""
