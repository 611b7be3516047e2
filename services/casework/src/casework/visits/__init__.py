"""Home visits (家访): mobile creates, offline batch sync, conditional updates, coverage."""
