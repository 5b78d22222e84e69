"""The site's pictures, drawn offline: which exist and the manifest that tells a stale one (``plan``), what they
read (``inputs``), how they look (``style``), and one drawing module per subject (``monitor``, ``dashboard``,
``downtimes``, ``simulation``, ``capture``, ``check_run``); ``tasks`` holds the invoke tasks."""
