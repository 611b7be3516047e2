"""Special-needs census each semester and support plans (一生一案, 一家一案)."""
