"""Controllers as clock processes (placeholder until the controllers land)."""


def start_controllers(cluster) -> None:  # replaced by the controllers module set
    return None
