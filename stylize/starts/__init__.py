"""The built-in starting images (``--init NAME``, entry-point group ``stylize.starts``), registered like a third party's."""
