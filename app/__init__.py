"""Aiguilleur: routes mentions of a company and its CEO to the team that must answer them."""
