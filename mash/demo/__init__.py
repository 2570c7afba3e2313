"""`mash demo`: a whole federation on loopback with synthetic records."""
