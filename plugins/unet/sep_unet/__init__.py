"""sepframework plugin package for the unet separator."""
