"""The runtime every Flashline HTTP service shares: settings, database, auth, health, logging."""
