"""Widgets of the app: loss chart, half-block images, confusion matrix, config form, run monitor."""
