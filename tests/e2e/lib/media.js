// Media the tests can tell apart, and ears to tell them: each doctor's page gets its own camera
// size and its own tone as microphone, and a page's received audio is measured with an FFT, so
// "who hears whom" is observed, not assumed.
//
//   await fakeDoctorMedia(page, { hz: 440, width: 320, height: 180 }); // before the page loads
//   const heard = await listen(page, 'slots', [440, 700]);             // what its slots carry
//   heard[440].heard === true
//
// Not here: the browser (browser.js), the server (server.js).

/**
 * Frequencies the specs give their doctors' microphones. Neither is a harmonic of the other:
 * with 440 and 880 Hz, the codec's second harmonic of the 440 Hz tone (about 45 dB under it)
 * sits right on 880 Hz and blurs "does not hear its own tone".
 */
export const TONES = { driver: 440, consultant: 700 };

/**
 * Before `page` loads anything: its getUserMedia gives the fake camera at exactly
 * `width`x`height`, and instead of the fake microphone (a beep a second) a steady sine of `hz`
 * made with WebAudio (OscillatorNode -> MediaStreamAudioDestinationNode). What the page asks
 * for otherwise (echo cancellation etc.) is passed on; a pure tone would not survive the noise
 * suppression of a real microphone's processing, and a generated track gets none.
 * @param {import('playwright-core').Page} page
 * @param {{hz: number, width: number, height: number}} opts
 */
export async function fakeDoctorMedia(page, opts) {
  await page.addInitScript((o) => {
    const md = navigator.mediaDevices;
    const original = md.getUserMedia.bind(md);
    const w = /** @type {any} */ (window);
    w.__fakeMedia = { ...o, asked: /** @type {MediaStreamConstraints[]} */ ([]) };
    md.getUserMedia = async (/** @type {MediaStreamConstraints} */ c) => {
      w.__fakeMedia.asked.push(JSON.parse(JSON.stringify(c)));
      const want = { ...c };
      if (want.video) want.video = { width: { exact: o.width }, height: { exact: o.height }, frameRate: { ideal: 24 } };
      const stream = await original(want);
      if (!c.audio) return stream;
      const ctx = new AudioContext({ sampleRate: 48000 });
      await ctx.resume();
      const osc = ctx.createOscillator();
      osc.frequency.value = o.hz;
      const gain = ctx.createGain();
      gain.gain.value = 0.3;
      const dest = ctx.createMediaStreamDestination();
      osc.connect(gain).connect(dest);
      osc.start();
      for (const t of stream.getAudioTracks()) {
        stream.removeTrack(t);
        t.stop();
      }
      stream.addTrack(dest.stream.getAudioTracks()[0]);
      w.__fakeMedia.ctx = ctx;
      return stream;
    };
  }, opts);
}

/**
 * Before `page` loads anything: getUserMedia fails as when the person clicks "Block".
 * @param {import('playwright-core').Page} page
 */
export async function refuseMedia(page) {
  await page.addInitScript(() => {
    const w = /** @type {any} */ (window);
    w.__mediaAsked = 0;
    navigator.mediaDevices.getUserMedia = async () => {
      w.__mediaAsked += 1;
      throw new DOMException('Permission denied', 'NotAllowedError');
    };
  });
}

/**
 * Before `page` loads anything: count the offers its peer connections create
 * (`window.__offers`). `negotiationneeded` is counted on a connection by `watchNegotiation`.
 * @param {import('playwright-core').Page} page
 */
export async function countOffers(page) {
  await page.addInitScript(() => {
    const w = /** @type {any} */ (window);
    w.__offers = 0;
    const createOffer = RTCPeerConnection.prototype.createOffer;
    RTCPeerConnection.prototype.createOffer = /** @type {any} */ (function (/** @type {any[]} */ ...args) {
      w.__offers += 1;
      return createOffer.apply(this, /** @type {any} */ (args));
    });
  });
}

/**
 * @typedef {object} Heard
 * @property {boolean} heard clearly there: a peak well above the spectrum around it
 * @property {number} peakDb the loudest level seen at that frequency (dBFS)
 * @property {number} aboveFloorDb how far above the median of the spectrum
 */

/**
 * Listen to what `page` receives for `ms` and report, per frequency, whether it is there:
 * an AnalyserNode (FFT of 8192 points, no smoothing) on each receiving track, sampled every
 * 100 ms; a frequency counts as heard when, in one sample of one track, its peak is over
 * -45 dBFS and 40 dB over the median of the 150 Hz - 4 kHz spectrum. (The tones arrive at about
 * -24 dBFS and 100 dB over that median; the codec's noise around a tone, a few hundred hertz
 * away, stays near -64 dBFS: the threshold sits halfway.)
 * @param {import('playwright-core').Page} page
 * @param {'slots'|'robot'} what the audio slots (other doctors), or the robot's microphone line
 * @param {number[]} freqs
 * @param {number} [ms]
 * @returns {Promise<Record<number, Heard>>}
 */
export async function listen(page, what, freqs, ms = 2000) {
  return page.evaluate(async ({ what, freqs, ms }) => {
    const lines = /** @type {any} */ (window).__bedside.session.lines;
    const transceivers = what === 'slots' ? lines.audioSlots : [lines.robotAudio];
    /** @type {MediaStreamTrack[]} */
    const tracks = transceivers.filter(Boolean).map((/** @type {RTCRtpTransceiver} */ t) => t.receiver.track);
    const ctx = new AudioContext({ sampleRate: 48000 });
    await ctx.resume();
    const analysers = tracks.map((track) => {
      const src = ctx.createMediaStreamSource(new MediaStream([track]));
      const an = ctx.createAnalyser();
      an.fftSize = 8192;
      an.smoothingTimeConstant = 0;
      src.connect(an);
      return an;
    });
    const hzPerBin = ctx.sampleRate / 8192;
    const bin = (/** @type {number} */ hz) => Math.round(hz / hzPerBin);
    /** @type {Record<number, {heard: boolean, peakDb: number, aboveFloorDb: number}>} */
    const out = {};
    for (const f of freqs) out[f] = { heard: false, peakDb: -Infinity, aboveFloorDb: -Infinity };
    const data = new Float32Array(4096);
    const end = performance.now() + ms;
    while (performance.now() < end) {
      await new Promise((r) => setTimeout(r, 100));
      for (const an of analysers) {
        an.getFloatFrequencyData(data);
        const band = Array.from(data.slice(bin(150), bin(4000))).map((v) => (Number.isFinite(v) ? v : -200)).sort((a, b) => a - b);
        const floor = band[Math.floor(band.length / 2)];
        for (const f of freqs) {
          let peak = -200;
          for (let i = bin(f) - 2; i <= bin(f) + 2; i++) peak = Math.max(peak, Number.isFinite(data[i]) ? data[i] : -200);
          const r = out[f];
          r.peakDb = Math.max(r.peakDb, peak);
          r.aboveFloorDb = Math.max(r.aboveFloorDb, peak - floor);
          if (peak > -45 && peak - floor >= 40) r.heard = true;
        }
      }
    }
    await ctx.close();
    for (const f of freqs) {
      out[f].peakDb = Math.round(out[f].peakDb);
      out[f].aboveFloorDb = Math.round(out[f].aboveFloorDb);
    }
    return out;
  }, { what, freqs, ms });
}
