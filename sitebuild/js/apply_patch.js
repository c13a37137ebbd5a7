// tinyrnn build: apply a document patch from the Python worker without losing it to one unknown reference.
// Bokeh refuses a whole patch when one of its events names a model the page never received ("reference <id> isn't
// known": a model the worker made while it was linking the two documents, right after the first render; upstream
// holoviz/panel#5830). Refused whole, the patch's other events were lost with it: the status line's "Ready", or
// "Restored the model ...". Here such a patch is applied an event at a time; only the events that name a model the
// page does not have are left out (that model is not on the page, so nothing shown changes), and each is recorded
// in window.tinyrnnDroppedPatchEvents for the tests. Any other error is thrown as before.
function tinyrnnApplyPatch(doc, patch, buffers) {
  const unknownReference = (error) => /reference \S+ isn't known/.test(String(error && error.message || error))
  try {
    doc.apply_json_patch(patch, buffers)
    return
  } catch (error) {
    if (!unknownReference(error) || !patch || !Array.isArray(patch.events)) throw error
  }
  const dropped = window.tinyrnnDroppedPatchEvents = window.tinyrnnDroppedPatchEvents || []
  for (const event of patch.events) {
    try {
      doc.apply_json_patch({...patch, events: [event]}, buffers)
    } catch (error) {
      if (!unknownReference(error)) throw error
      dropped.push({kind: event.kind, attr: event.attr, model: event.model && event.model.id,
                    error: String(error.message || error)})
    }
  }
}
