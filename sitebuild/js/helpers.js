// tinyrnn build: the page starts (and stops) the training helper workers the Python worker asks for; the other side
// is core/tinyrnn/engines/kernels/shards.js (startHelpers). They start here, not in the Python worker, because
// Firefox can leave a worker that starts a worker of its own asleep for good (offline reloads, issue 19).
const tinyrnnHelpers = new Map()  // the Python worker's number for a helper -> its Worker
function tinyrnnHelperWorkers(event) {
  const msg = event.data
  if (msg && msg.type === 'tinyrnn-helpers') {
    const url = URL.createObjectURL(new Blob([msg.source], {type: 'text/javascript'}))
    msg.ids.forEach((id, i) => {
      const worker = new Worker(url, {name: `tinyrnn-shard-${id}`})
      worker.onerror = (e) => console.error(`training helper ${id} failed:`, e.message || e)
      worker.postMessage({type: 'port', port: msg.ports[i]}, [msg.ports[i]])
      tinyrnnHelpers.set(id, worker)
    })
    setTimeout(() => URL.revokeObjectURL(url), 60000)  // after the workers have loaded it
  } else if (msg && msg.type === 'tinyrnn-helpers-stop') {
    for (const id of msg.ids) {
      const worker = tinyrnnHelpers.get(id)
      if (worker) worker.terminate()
      tinyrnnHelpers.delete(id)
    }
  }
}
