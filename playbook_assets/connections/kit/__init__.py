"""What every warehouse, CRM and source shares: one retry policy (``retry``), one deadline
(``deadline``) and one way to turn a client's exception into the product's error kinds
(``errors``). A backend module imports these, ``base.py`` and the filter semantics, never
another backend."""
