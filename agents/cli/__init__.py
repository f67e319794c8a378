"""The `simcity` command line: the only place that knows both packages."""
