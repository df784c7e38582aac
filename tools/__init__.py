"""Project tools: engine setup, demo, reports."""
