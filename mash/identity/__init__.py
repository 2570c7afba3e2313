"""Who is who: certificates for agents and clients, analyst tokens, peer identity."""
