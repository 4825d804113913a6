"""Tests of the application logic between the schema and the stores."""
