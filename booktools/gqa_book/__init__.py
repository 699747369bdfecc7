"""The book's machinery, beside the library and outside its wheel: executing the notebooks under a profile
and building the Jupyter Book (`book`, `notebook_inputs`, `launch`, `sphinx_offline`), what the notebooks
call to glue values and draw (`notebook`, `plots`, `exercises`, `explorer`), and checking the built book as
a reader would (`reader`, `browser`, `linkcheck`, `handout`, `render`). It imports the library `gqa`; the
library never imports it (tests/test_layers.py). It is installed from a checkout (`make book`, or
`pip install -e booktools`), and registers `gqa book`, `render`, `run` and `exercise` (`gqa_book.commands`).
"""
