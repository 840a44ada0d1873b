"""Events from the brand's other systems and the automations they trigger."""
