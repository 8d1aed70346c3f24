// The robot page's metronome for its deadman check, in a dedicated worker (robot.js starts it).
//
// Why a worker: when the robot page is hidden (a tablet's screen turned off, another app or tab
// in front), Chromium throttles the page's own timers: `setInterval(f, 20)` runs about once a
// second, so a driver whose frames stopped would keep the robot moving for up to a second
// instead of 300 ms. Timers in a dedicated worker are not throttled that way, and the messages
// it posts reach the hidden page at once (only timers are throttled, not message delivery).
//
// In:  {type: 'start', everyMs}  tick every `everyMs` ms from now on;
//      {type: 'stop'}            stop ticking.
// Out: 'tick'                    time to look at the watchdog (robot.js uses its own clock).
//
// Not here: the watchdog (watchdog.js) or what a tick does (robot.js).

/** @type {ReturnType<typeof setInterval>|null} */
let timer = null;

self.addEventListener('message', (/** @type {MessageEvent<{type: 'start', everyMs: number}|{type: 'stop'}>} */ e) => {
  if (timer !== null) clearInterval(timer);
  timer = null;
  if (e.data.type === 'start') {
    const every = Math.max(5, Math.min(1000, Number(e.data.everyMs) || 20));
    timer = setInterval(() => self.postMessage('tick'), every);
  }
});

export {};
