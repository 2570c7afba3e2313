"""Sharing agreements: routing at the broker, disclosure and transforms at each agent."""
