"""The web kit: serving HTTP around and in front of Flask (requests answered early)."""
