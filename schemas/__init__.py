"""Committed JSON Schemas, shipped as package data (deployc.schemas)."""
