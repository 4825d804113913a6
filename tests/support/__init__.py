"""Test support: connections to the machine's real services and private servers for fault tests."""
