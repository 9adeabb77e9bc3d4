"""Learning from a user's strokes: the stroked pixels (:mod:`.strokes`), the read-out's
inputs sampled at them (:mod:`.samples`), whole visible images held for live refits
(:mod:`.live`), the fit itself (:mod:`.fit`) and the bench-measured trunk fine-tuning
(:mod:`.finetune`). Below inference: a learnt model predicts like any other."""
