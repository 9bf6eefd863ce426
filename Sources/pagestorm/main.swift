print("pagestorm: CLI under construction")
