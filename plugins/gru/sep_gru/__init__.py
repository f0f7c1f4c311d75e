"""sepframework plugin package for the gru separator."""
