"""The site: serve, build and test tasks (``tasks``), the mkdocs-macros module (``macros``) and the pictures
(``previews``)."""
