"""B5 events, split by concern: the data (:mod:`.data`), Baoxue's event path (:mod:`.path`), raw
JetStream as the comparator (:mod:`.raw`) and the records (:mod:`.measure`). ``bench/b5_events.py`` runs them."""
