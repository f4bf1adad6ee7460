"""Between the front ends (`ui/`) and answering (`qa/`): what a running citeqa does besides answering a question —
assemble the answering chain from the settings (`build`), add and remove documents while it answers (`library`),
notice another process's writes (`watch`), say whether it can answer (`health`) and keep users' judgements
(`feedback`)."""
