"""The network lab: namespaces, links and the delaying relay between the unit and its acquirer."""
