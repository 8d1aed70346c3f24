// Link quality from `RTCPeerConnection.getStats()`: round-trip time, packet loss and bitrate,
// sampled once a second and turned into per-interval figures (loss and bitrate are differences
// between two samples, not totals since the start).
//
// Not here: showing them (consult.js, robot.js render the summary).

/**
 * @typedef {object} LinkStats
 * @property {number|null} rttMs round trip to the SFU (ICE candidate pair)
 * @property {number|null} lossPct packets lost in the last interval, percent
 * @property {number|null} kbps media bitrate in the last interval (received, or sent when publishing)
 * @property {number|null} fps
 * @property {number} framesDecoded video frames decoded so far (viewers)
 * @property {number|null} width
 * @property {number|null} height
 * @property {'good'|'fair'|'poor'|'unknown'} quality
 * @property {Path|null} path how this browser reaches the media node (selected candidate pair)
 */

/**
 * `udp` straight to the node, `tcp` (ICE-TCP) to it, or `relay` through a TURN server, reached
 * over `relayProtocol` (udp, tcp or tls). TCP and relays add delay that UDP does not have.
 * @typedef {object} Path
 * @property {'udp'|'tcp'|'relay'} kind
 * @property {string|null} relayProtocol
 */

/**
 * @typedef {object} Totals
 * @property {number} at ms
 * @property {number} bytes
 * @property {number} packets
 * @property {number} lost
 */

/**
 * @param {RTCStatsReport} report
 * @param {'in'|'out'} direction
 * @param {string|null} [videoMid] the m-line whose video the figures describe (the robot's, in a
 *   consult that also receives doctors' cameras); any video when null
 * @returns {{totals: Totals, rttMs: number|null, fps: number|null, framesDecoded: number, width: number|null, height: number|null, remoteLossFraction: number|null, path: Path|null}}
 */
export function summarise(report, direction, videoMid = null) {
  let bytes = 0;
  let packets = 0;
  let lost = 0;
  /** @type {number|null} */
  let rttMs = null;
  /** @type {number|null} */
  let fps = null;
  let framesDecoded = 0;
  /** @type {number|null} */
  let width = null;
  /** @type {number|null} */
  let height = null;
  /** @type {number|null} */
  let remoteLossFraction = null;
  /** @type {string|null} */
  let selectedPair = null;
  /** @type {string|null} */
  let localCandidate = null;
  report.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) selectedPair = s.selectedCandidatePairId;
  });
  report.forEach((s) => {
    if (s.type === 'candidate-pair') {
      const chosen = selectedPair ? s.id === selectedPair : (s.nominated && s.state === 'succeeded');
      if (chosen && typeof s.currentRoundTripTime === 'number') rttMs = s.currentRoundTripTime * 1000;
      if (chosen) localCandidate = s.localCandidateId;
    } else if (direction === 'in' && s.type === 'inbound-rtp') {
      bytes += s.bytesReceived || 0;
      packets += s.packetsReceived || 0;
      lost += Math.max(0, s.packetsLost || 0);
      if (s.kind === 'video' && (videoMid === null || s.mid === videoMid)) {
        framesDecoded += s.framesDecoded || 0;
        if (typeof s.framesPerSecond === 'number') fps = s.framesPerSecond;
        if (typeof s.frameWidth === 'number') width = s.frameWidth;
        if (typeof s.frameHeight === 'number') height = s.frameHeight;
      }
    } else if (direction === 'out' && s.type === 'outbound-rtp') {
      bytes += s.bytesSent || 0;
      packets += s.packetsSent || 0;
      if (s.kind === 'video') {
        if (typeof s.framesPerSecond === 'number') fps = s.framesPerSecond;
        if (typeof s.frameWidth === 'number') width = s.frameWidth;
        if (typeof s.frameHeight === 'number') height = s.frameHeight;
      }
    } else if (direction === 'out' && s.type === 'remote-inbound-rtp') {
      if (typeof s.fractionLost === 'number') remoteLossFraction = Math.max(remoteLossFraction || 0, s.fractionLost);
      if (rttMs === null && typeof s.roundTripTime === 'number') rttMs = s.roundTripTime * 1000;
    }
  });
  const local = localCandidate ? report.get(localCandidate) : null;
  /** @type {Path|null} */
  let path = null;
  if (local && local.candidateType === 'relay') path = { kind: 'relay', relayProtocol: local.relayProtocol || null };
  else if (local) path = { kind: local.protocol === 'tcp' ? 'tcp' : 'udp', relayProtocol: null };
  return {
    totals: { at: 0, bytes, packets, lost },
    rttMs, fps, framesDecoded, width, height, remoteLossFraction, path,
  };
}

/**
 * "UDP", "TCP", "relay (TURN/TLS)".
 * @param {Path|null} p
 */
export function describePath(p) {
  if (!p) return '–';
  if (p.kind === 'relay') return p.relayProtocol ? `relay (TURN/${p.relayProtocol.toUpperCase()})` : 'relay (TURN)';
  return p.kind.toUpperCase();
}

/**
 * Grade a link for the at-a-glance badge.
 * @param {number|null} rttMs
 * @param {number|null} lossPct
 * @returns {LinkStats['quality']}
 */
export function grade(rttMs, lossPct) {
  if (rttMs === null && lossPct === null) return 'unknown';
  if ((lossPct ?? 0) > 5 || (rttMs ?? 0) > 400) return 'poor';
  if ((lossPct ?? 0) > 1 || (rttMs ?? 0) > 150) return 'fair';
  return 'good';
}

/** Samples one peer connection once a second. */
export class StatsSampler extends EventTarget {
  /**
   * @param {() => RTCPeerConnection|null} pc the current connection (it changes on reconnect)
   * @param {'in'|'out'} direction
   * @param {() => string|null} [videoMid] the m-line whose video to describe (see summarise)
   */
  constructor(pc, direction, videoMid = () => null) {
    super();
    this.pc = pc;
    this.direction = direction;
    this.videoMid = videoMid;
    /** @type {Totals|null} */
    this.prev = null;
    /** @type {RTCPeerConnection|null} */
    this.prevPc = null;
    /** @type {LinkStats|null} */
    this.latest = null;
    /** @type {ReturnType<typeof setInterval>|null} */
    this.timer = null;
  }

  start() {
    if (!this.timer) this.timer = setInterval(() => this.sample(), 1000);
  }

  stop() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  async sample() {
    const pc = this.pc();
    if (!pc || pc.connectionState !== 'connected') {
      this.prev = null;
      return;
    }
    const s = summarise(await pc.getStats(), this.direction, this.videoMid());
    const now = performance.now();
    s.totals.at = now;
    const prev = this.prevPc === pc ? this.prev : null;
    /** @type {number|null} */
    let kbps = null;
    /** @type {number|null} */
    let lossPct = s.remoteLossFraction === null ? null : s.remoteLossFraction * 100;
    if (prev && now > prev.at) {
      kbps = ((s.totals.bytes - prev.bytes) * 8) / (now - prev.at);
      if (this.direction === 'in') {
        const got = s.totals.packets - prev.packets;
        const lost = s.totals.lost - prev.lost;
        lossPct = got + lost > 0 ? (Math.max(0, lost) * 100) / (got + lost) : 0;
      }
    }
    this.prev = s.totals;
    this.prevPc = pc;
    this.latest = {
      rttMs: s.rttMs,
      lossPct,
      kbps,
      fps: s.fps,
      framesDecoded: s.framesDecoded,
      width: s.width,
      height: s.height,
      quality: grade(s.rttMs, lossPct),
      path: s.path,
    };
    this.dispatchEvent(new CustomEvent('stats', { detail: this.latest }));
  }
}

/**
 * "23 ms · 0.0 % loss · 812 kbit/s", plus the path when it is not plain UDP
 * @param {LinkStats|null} s
 */
export function describe(s) {
  if (!s) return 'measuring…';
  const parts = [
    s.rttMs === null ? 'RTT –' : `RTT ${Math.round(s.rttMs)} ms`,
    s.lossPct === null ? 'loss –' : `loss ${s.lossPct.toFixed(1)} %`,
    s.kbps === null ? '– kbit/s' : `${Math.round(s.kbps)} kbit/s`,
  ];
  // Only the unusual path is worth the space: it explains a lagging picture.
  if (s.path && s.path.kind !== 'udp') parts.push(describePath(s.path));
  return parts.join(' · ');
}
