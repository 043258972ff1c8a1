// provledger explorer: a read-only view of the ledger for auditors, over the node's REST API.
//
// No framework, no build step, nothing fetched from anywhere but the node that served the
// page. Every value that comes from the API is written with textContent (never innerHTML), so
// an asset id or a name cannot inject markup. Every asynchronous entry point catches its
// errors and shows them as a message: the page never leaves a promise rejection unhandled.
//
// Navigation lives in the URL fragment: `#asset=<id>` opens an asset (so the back button and
// bookmarks work, and a lineage node is a plain link), and `#token=<token>` hands the page a
// bearer token; the token is moved to sessionStorage and removed from the address bar at once.
"use strict";

(() => {
  const TOKEN_STORAGE_KEY = "provledger.explorer.token";
  const HEALTH_REFRESH_MS = 5000;
  const PAGE_LIMIT = 200; // items per list request (the API allows up to 500)
  const PAGES_MAX = 10; // list requests per list, so one search stays bounded
  const TRADE_DETAILS_MAX = 25; // orders whose offer and life cycle are fetched one by one
  const LABEL_CHARS_MAX = 26;
  // The ledger's identifier syntax (asset, member, grant and order ids), as the API checks it.
  const IDENTIFIER_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$/;

  const SVG_NS = "http://www.w3.org/2000/svg";

  const CLASSIFICATIONS = { 1: "general", 2: "important", 3: "core" };
  const OPERATIONS = { 1: "read", 2: "compute", 3: "derive", 4: "share" };
  const ORDER_STATUSES = { 1: "ordered", 2: "delivered", 3: "settled", 4: "disputed", 5: "resolved" };
  const DISPUTE_OUTCOMES = { 1: "for buyer", 2: "for seller", 3: "settled by agreement" };
  const KIND_FAMILIES = {
    provenance: [
      "asset_registered", "asset_derived", "asset_shared", "asset_transferred", "asset_used",
      "certificate_issued", "certificate_revoked", "asset_retired",
    ],
    authorization: ["grant_issued", "grant_revoked", "cross_border_approved"],
    trade: [
      "offer_listed", "order_placed", "order_delivered", "order_settled", "dispute_opened",
      "dispute_resolved", "broker_qualified", "mandate_granted", "mandate_revoked",
      "offer_delisted", "trading_suspended",
    ],
    governance: ["governance"],
    supervision: [
      "complaint_filed", "case_opened", "case_step_recorded", "case_ruled", "ruling_appealed",
      "appeal_decided",
    ],
  };

  // --- small helpers ------------------------------------------------------------------------

  const $ = (id) => document.getElementById(id);

  function element(tag, options = {}, children = []) {
    const node = document.createElement(tag);
    if (options.className) node.className = options.className;
    if (options.text !== undefined && options.text !== null) node.textContent = String(options.text);
    if (options.title) node.title = options.title;
    for (const [name, value] of Object.entries(options.attributes || {})) {
      node.setAttribute(name, value);
    }
    for (const child of children) {
      if (child !== null && child !== undefined) {
        node.append(child instanceof Node ? child : document.createTextNode(String(child)));
      }
    }
    return node;
  }

  function svgElement(tag, attributes = {}, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /** `object[name]`, or undefined for a missing object or a null field (never throws). */
  function pick(object, name) {
    if (!object || typeof object !== "object") return undefined;
    const value = object[name];
    return value === null ? undefined : value;
  }

  function asList(value) {
    if (Array.isArray(value)) return value;
    if (value === undefined || value === null || value === "") return [];
    return [value];
  }

  function asNumber(value) {
    if (value === undefined || value === null || value === "") return null;
    const number = Number(value);
    return Number.isFinite(number) ? number : null;
  }

  function shorten(text, size = LABEL_CHARS_MAX) {
    const value = String(text ?? "");
    return value.length <= size ? value : value.slice(0, size - 1) + "…";
  }

  function shortHash(hex) {
    const value = String(hex ?? "");
    return value.length > 20 ? `${value.slice(0, 12)}…${value.slice(-6)}` : value;
  }

  function hashElement(hex) {
    if (!hex) return element("span", { className: "empty", text: "—" });
    return element("span", { className: "hash", text: shortHash(hex), title: String(hex) });
  }

  function pad(number, size = 2) {
    return String(number).padStart(size, "0");
  }

  function formatTime(milliseconds) {
    const value = asNumber(milliseconds);
    if (value === null || value <= 0) return "";
    const date = new Date(value);
    if (Number.isNaN(date.getTime())) return "";
    return (
      `${date.getUTCFullYear()}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())} ` +
      `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} UTC`
    );
  }

  function enumName(value, table, prefix) {
    if (value === undefined || value === null || value === "") return "";
    if (typeof value === "number") return table[value] || String(value);
    let text = String(value);
    if (/^\d+$/.test(text)) return table[Number(text)] || text;
    if (prefix && text.toUpperCase().startsWith(prefix)) text = text.slice(prefix.length);
    return text.toLowerCase().replace(/_/g, " ");
  }

  function classificationOf(value) {
    const name = enumName(value, CLASSIFICATIONS, "CLASSIFICATION_");
    return ["general", "important", "core"].includes(name) ? name : "unknown";
  }

  const operationName = (value) => enumName(value, OPERATIONS, "OPERATION_");
  const orderStatusName = (value) => enumName(value, ORDER_STATUSES, "ORDER_STATUS_") || "unknown";

  function snakeCase(text) {
    return String(text).replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
  }

  function humanKind(kind) {
    return snakeCase(kind).replace(/_/g, " ");
  }

  function kindFamily(kind) {
    const name = snakeCase(kind);
    for (const [family, kinds] of Object.entries(KIND_FAMILIES)) {
      if (kinds.includes(name)) return family;
    }
    return "other";
  }

  function badge(text, modifier, title) {
    return element("span", { className: `badge badge--${modifier}`, text, title });
  }

  function classificationBadge(classification) {
    return badge(classification, classification, `classification: ${classification}`);
  }

  function emptyRow(text, columns) {
    return element("tr", {}, [
      element("td", { className: "empty", text, attributes: { colspan: String(columns) } }),
    ]);
  }

  function chips(values, render = (value) => String(value)) {
    const list = element("ul", { className: "list-inline" });
    const items = asList(values);
    if (items.length === 0) return element("span", { className: "empty", text: "none" });
    for (const value of items) list.append(element("li", { className: "chip", text: render(value) }));
    return list;
  }

  function assetLink(assetId) {
    return element("a", {
      className: "asset-link",
      text: assetId,
      attributes: { href: assetHash(assetId) },
    });
  }

  function fact(label, value, className) {
    const description = element("dd", { className });
    if (value instanceof Node) description.append(value);
    else if (value === undefined || value === null || value === "") {
      description.append(element("span", { className: "empty", text: "—" }));
    } else description.textContent = String(value);
    return element("div", {}, [element("dt", { text: label }), description]);
  }

  // --- messages -----------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, reason) {
      super(reason || code || `HTTP ${status}`);
      this.name = "ApiError";
      this.status = status;
      this.code = code;
      this.reason = reason;
    }
  }

  /** A title and a sentence for people, for any error a request can end with. */
  function describeError(error, what) {
    if (error instanceof ApiError) {
      const reason = error.reason || error.code || "";
      switch (error.status) {
        case 401:
          return {
            title: "The node did not accept the access token.",
            detail: `${reason ? reason + ". " : ""}Paste a valid token above; issue one with ` +
              "provledger token issue --identity FILE --role auditor.",
          };
        case 403:
          return {
            title: `Your token may not see ${what}.`,
            detail: `${reason ? reason + ". " : ""}A member token reads only what concerns its ` +
              "member; an auditor token (for an auditor or regulator member) reads everything.",
          };
        case 404:
          return { title: `Not found: ${what}.`, detail: reason || "The ledger has no such record." };
        case 400:
        case 422:
          return { title: `The node refused the request for ${what}.`, detail: reason };
        default:
          return { title: `The node answered ${error.status} for ${what}.`, detail: reason };
      }
    }
    return {
      title: `Could not reach the node for ${what}.`,
      detail: error && error.message ? error.message : String(error),
    };
  }

  function showMessage(title, detail, kind = "error") {
    const box = $("message");
    box.replaceChildren(element("strong", { text: title }));
    if (detail) box.append(element("p", { text: detail }));
    box.className = kind === "info" ? "message message--info" : "message";
    box.hidden = false;
  }

  function clearMessage() {
    const box = $("message");
    box.hidden = true;
    box.replaceChildren();
  }

  function showError(error, what) {
    const { title, detail } = describeError(error, what);
    showMessage(title, detail);
  }

  // --- the token ----------------------------------------------------------------------------

  function storedToken() {
    try {
      return sessionStorage.getItem(TOKEN_STORAGE_KEY) || "";
    } catch (_) {
      return ""; // storage disabled: the token lives only as long as the page
    }
  }

  let memoryToken = "";

  function currentToken() {
    return storedToken() || memoryToken;
  }

  function saveToken(token) {
    memoryToken = token;
    try {
      if (token) sessionStorage.setItem(TOKEN_STORAGE_KEY, token);
      else sessionStorage.removeItem(TOKEN_STORAGE_KEY);
    } catch (_) {
      // storage disabled: memoryToken keeps it for this page
    }
    $("token-input").value = token;
  }

  // --- the API ------------------------------------------------------------------------------

  function url(path, parameters = {}) {
    const query = new URLSearchParams();
    for (const [name, value] of Object.entries(parameters)) {
      if (value !== undefined && value !== null && value !== "") query.set(name, String(value));
    }
    const text = query.toString();
    return text ? `${path}?${text}` : path;
  }

  async function request(path, parameters) {
    const headers = { Accept: "application/json" };
    const token = currentToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    const response = await fetch(url(path, parameters), { headers, cache: "no-store" });
    if (!response.ok) {
      let code = "";
      let reason = "";
      try {
        const body = await response.json();
        code = body.error || "";
        reason = body.reason || (typeof body.detail === "string" ? body.detail : "");
      } catch (_) {
        reason = response.statusText;
      }
      throw new ApiError(response.status, code, reason);
    }
    return response;
  }

  async function getJson(path, parameters) {
    const response = await request(path, parameters);
    return response.json();
  }

  /** Every item of a paged list (bounded by PAGES_MAX requests), and whether it was cut. */
  async function getAll(path, parameters) {
    const items = [];
    let cursor = null;
    for (let page = 0; page < PAGES_MAX; page += 1) {
      const body = await getJson(path, { ...parameters, limit: PAGE_LIMIT, cursor });
      items.push(...asList(body.items));
      cursor = body.next_cursor;
      if (!cursor) return { items, truncated: false };
    }
    return { items, truncated: true };
  }

  // --- consortium health --------------------------------------------------------------------

  let healthTimer = null;
  let healthGeneration = 0;

  function setHealthState(text, modifier) {
    const pill = $("health-state");
    pill.textContent = text;
    pill.className = `pill${modifier ? ` pill--${modifier}` : ""}`;
  }

  function validatorIds(status, checkpoint) {
    const ids = [];
    for (const validator of asList(pick(status, "validators"))) {
      const id = pick(validator, "validator_id");
      if (id && !ids.includes(id)) ids.push(id);
    }
    for (const signature of signaturesOf(checkpoint)) {
      const id = pick(signature, "validator_id");
      if (id && !ids.includes(id)) ids.push(id);
    }
    return ids;
  }

  function signaturesOf(checkpoint) {
    const certificate = pick(checkpoint, "certificate") || {};
    return asList(pick(certificate, "signatures"));
  }

  function renderHealth(status, checkpoint) {
    const header = pick(checkpoint, "header") || {};
    $("health-chain-id").textContent = pick(status, "chain_id") ?? "—";
    $("health-node-id").textContent = pick(status, "node_id") ?? "—";
    $("health-height").textContent = String(pick(status, "height") ?? "—");
    $("health-head-block").replaceChildren(hashElement(pick(status, "head_block_id")));
    $("health-log-size").textContent = String(pick(status, "log_size") ?? "—");
    $("health-log-root").replaceChildren(hashElement(pick(status, "log_root")));
    $("health-genesis").replaceChildren(hashElement(pick(status, "genesis_hash")));

    const checkpointHeight = pick(checkpoint, "height");
    const time = formatTime(pick(header, "time_ms"));
    const proposer = pick(header, "proposer_id");
    $("health-checkpoint").textContent = checkpoint
      ? [
        checkpointHeight !== undefined ? `height ${checkpointHeight}` : "",
        proposer ? `proposed by ${proposer}` : "",
        time,
      ].filter(Boolean).join(", ")
      : "none yet";

    const signed = new Set(signaturesOf(checkpoint).map((s) => pick(s, "validator_id")));
    const ids = validatorIds(status, checkpoint);
    const list = $("health-validators");
    list.replaceChildren();
    if (ids.length === 0) list.append(element("li", { className: "empty", text: "no checkpoint yet" }));
    for (const id of ids) {
      const hasSigned = signed.has(id);
      list.append(
        element(
          "li",
          {
            className: `validator ${hasSigned ? "validator--signed" : "validator--missing"}`,
            attributes: { "data-validator-id": id, "data-signed": String(hasSigned) },
          },
          [
            element("span", {
              className: "validator__mark",
              text: hasSigned ? "✓" : "–",
              attributes: { "aria-hidden": "true" },
            }),
            element("span", { text: id }),
            element("span", { className: "visually-hidden", text: hasSigned ? " signed" : " did not sign" }),
          ],
        ),
      );
    }
    const quorum = asNumber(pick(status, "quorum_size")) ?? 0;
    setHealthState(
      `${signed.size} of ${ids.length} validators signed (quorum ${quorum})`,
      signed.size >= quorum && quorum > 0 ? "ok" : "warn",
    );
    $("health-updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  }

  async function refreshHealth() {
    const generation = ++healthGeneration;
    if (!currentToken()) {
      try {
        await getJson("/v1/health");
        setHealthState("node up — a token is needed for details", "warn");
      } catch (error) {
        setHealthState("node not answering", "bad");
      }
      return;
    }
    try {
      const status = await getJson("/v1/status");
      let checkpoint = null;
      try {
        checkpoint = await getJson("/v1/checkpoint");
      } catch (error) {
        // An empty chain has no checkpoint yet; anything else is worth saying.
        if (!(error instanceof ApiError && error.status === 404)) throw error;
      }
      if (generation === healthGeneration) renderHealth(status, checkpoint);
    } catch (error) {
      if (generation !== healthGeneration) return;
      const { title } = describeError(error, "the consortium status");
      setHealthState(title, "bad");
      if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
        showError(error, "the consortium status");
      }
    }
  }

  function scheduleHealth() {
    if (healthTimer !== null) clearTimeout(healthTimer);
    healthTimer = setTimeout(async () => {
      healthTimer = null;
      if (!document.hidden) await refreshHealth();
      scheduleHealth();
    }, HEALTH_REFRESH_MS);
  }

  // --- the lineage graph: layering, ordering, drawing ---------------------------------------

  /**
   * Layers for a DAG, so that every edge goes from a lower layer to a higher one.
   *
   * Longest-path layering (every node one layer after its deepest parent), then each node
   * that has children is pulled forward to just before its earliest child, in reverse
   * topological order: sources sit next to what they feed rather than all in the first
   * column. Ancestors of the root therefore end up left of it and descendants right of it.
   * A cycle (which the ledger's rules forbid) cannot hang the page: its nodes are layered
   * as if the edges closing it did not exist.
   */
  function assignLayers(ids, parentsOf, childrenOf) {
    const indegree = new Map(ids.map((id) => [id, 0]));
    for (const id of ids) {
      for (const child of childrenOf.get(id)) indegree.set(child, indegree.get(child) + 1);
    }
    const queue = ids.filter((id) => indegree.get(id) === 0);
    const order = [];
    const seen = new Set();
    while (order.length < ids.length) {
      if (queue.length === 0) {
        // A cycle: take any unseen node to break it.
        queue.push(ids.find((id) => !seen.has(id)));
      }
      const id = queue.shift();
      if (seen.has(id)) continue;
      seen.add(id);
      order.push(id);
      for (const child of childrenOf.get(id)) {
        indegree.set(child, indegree.get(child) - 1);
        if (indegree.get(child) === 0 && !seen.has(child)) queue.push(child);
      }
    }
    const position = new Map(order.map((id, index) => [id, index]));
    const layer = new Map();
    for (const id of order) {
      let value = 0;
      for (const parent of parentsOf.get(id)) {
        if (position.get(parent) < position.get(id)) value = Math.max(value, layer.get(parent) + 1);
      }
      layer.set(id, value);
    }
    for (const id of [...order].reverse()) {
      const later = childrenOf.get(id).filter((child) => position.get(child) > position.get(id));
      if (later.length) layer.set(id, Math.min(...later.map((child) => layer.get(child))) - 1);
    }
    return { layer, forward: (parent, child) => position.get(parent) < position.get(child) };
  }

  function countCrossings(upper, lower, links) {
    // links: [upperIndex, lowerIndex] pairs between two adjacent layers
    let crossings = 0;
    for (let i = 0; i < links.length; i += 1) {
      for (let j = i + 1; j < links.length; j += 1) {
        const [a1, b1] = links[i];
        const [a2, b2] = links[j];
        if ((a1 - a2) * (b1 - b2) < 0) crossings += 1;
      }
    }
    return crossings;
  }

  /**
   * A layered drawing of the graph: layers, order within layers and the routes of edges.
   * Edges longer than one layer get a virtual point in each layer they pass through, so that
   * ordering sees them and they bend around nodes instead of crossing them.
   */
  function layoutLineage(nodes, edges) {
    const ids = [...nodes.keys()];
    const parentsOf = new Map(ids.map((id) => [id, []]));
    const childrenOf = new Map(ids.map((id) => [id, []]));
    for (const { parent, child } of edges) {
      childrenOf.get(parent).push(child);
      parentsOf.get(child).push(parent);
    }
    const { layer, forward } = assignLayers(ids, parentsOf, childrenOf);

    // Normalise layers to 0..n-1 and build the proper graph with virtual points.
    const lowest = Math.min(...layer.values());
    for (const id of ids) layer.set(id, layer.get(id) - lowest);
    const layerCount = Math.max(...layer.values()) + 1;
    const layers = Array.from({ length: layerCount }, () => []);
    for (const id of ids) layers[layer.get(id)].push(id); // in the API's order: root first
    const down = new Map(); // vertex -> vertices in the next layer
    const up = new Map(); // vertex -> vertices in the previous layer
    const link = (from, to) => {
      if (!down.has(from)) down.set(from, []);
      if (!up.has(to)) up.set(to, []);
      down.get(from).push(to);
      up.get(to).push(from);
    };
    const routes = [];
    let virtualCount = 0;
    for (const { parent, child } of edges) {
      if (!forward(parent, child)) continue; // closes a cycle: not drawn as a layered edge
      const path = [parent];
      for (let level = layer.get(parent) + 1; level < layer.get(child); level += 1) {
        const virtual = `\u0000virtual-${(virtualCount += 1)}`;
        layers[level].push(virtual);
        path.push(virtual);
      }
      path.push(child);
      for (let index = 0; index + 1 < path.length; index += 1) link(path[index], path[index + 1]);
      routes.push({ parent, child, path });
    }

    // Order within layers: barycentre sweeps down and up, keeping the best order seen.
    const index = new Map();
    const reindex = () => layers.forEach((members) => members.forEach((id, i) => index.set(id, i)));
    reindex();
    const total = () => {
      let crossings = 0;
      for (let level = 0; level + 1 < layers.length; level += 1) {
        const links = [];
        for (const id of layers[level]) {
          for (const next of down.get(id) || []) links.push([index.get(id), index.get(next)]);
        }
        crossings += countCrossings(layers[level], layers[level + 1], links);
      }
      return crossings;
    };
    const sortByBarycentre = (members, neighboursOf) => {
      const keyed = members.map((id, i) => {
        const neighbours = neighboursOf.get(id) || [];
        const centre = neighbours.length
          ? neighbours.reduce((sum, other) => sum + index.get(other), 0) / neighbours.length
          : i; // no neighbour there: stay where it is
        return { id, centre, i };
      });
      keyed.sort((a, b) => a.centre - b.centre || a.i - b.i);
      members.splice(0, members.length, ...keyed.map((entry) => entry.id));
      members.forEach((id, i) => index.set(id, i));
    };
    let best = layers.map((members) => [...members]);
    let bestCrossings = total();
    const sweepsMax = ids.length > 300 ? 2 : 8;
    for (let sweep = 0; sweep < sweepsMax && bestCrossings > 0; sweep += 1) {
      if (sweep % 2 === 0) {
        for (let level = 1; level < layers.length; level += 1) sortByBarycentre(layers[level], up);
      } else {
        for (let level = layers.length - 2; level >= 0; level -= 1) sortByBarycentre(layers[level], down);
      }
      const crossings = total();
      if (crossings < bestCrossings) {
        bestCrossings = crossings;
        best = layers.map((members) => [...members]);
      }
    }
    best.forEach((members, level) => layers.splice(level, 1, members));
    reindex();
    return { layers, layer, routes, crossings: bestCrossings };
  }

  const NODE_WIDTH = 210;
  const NODE_HEIGHT = 66;
  const LAYER_GAP = 84;
  const SLOT_GAP = 22;
  const MARGIN = 24;
  const LABEL_SPACE = 26;
  const ARROW_GAP = 3;
  const VIRTUAL_SIZE = 12;

  function drawLineage(container, nodes, edges, rootId) {
    const { layers, layer, routes } = layoutLineage(nodes, edges);
    const vertical = window.matchMedia("(max-width: 40rem)").matches;
    const along = (vertical ? NODE_HEIGHT : NODE_WIDTH) + LAYER_GAP; // step between layers
    const rootLayer = layer.get(rootId);

    // Each vertex's box: a node's card, or a thin channel for an edge passing through a layer.
    const isVirtual = (id) => id.startsWith("\u0000");
    const span = (id) => (isVirtual(id) ? VIRTUAL_SIZE : vertical ? NODE_WIDTH : NODE_HEIGHT);
    const layerLength = (members) =>
      members.reduce((sum, id) => sum + span(id), 0) + Math.max(members.length - 1, 0) * SLOT_GAP;
    const longest = Math.max(...layers.map(layerLength));
    const place = new Map();
    layers.forEach((members, level) => {
      let b = MARGIN + LABEL_SPACE + (longest - layerLength(members)) / 2;
      const a = MARGIN + level * along;
      for (const id of members) {
        const size = span(id);
        place.set(
          id,
          vertical
            ? { x: b, y: a, w: size, h: NODE_HEIGHT }
            : { x: a, y: b, w: NODE_WIDTH, h: size },
        );
        b += size + SLOT_GAP;
      }
    });
    const width = vertical
      ? MARGIN * 2 + LABEL_SPACE + longest
      : MARGIN * 2 + layers.length * along - LAYER_GAP;
    const height = vertical
      ? MARGIN * 2 + layers.length * along - LAYER_GAP
      : MARGIN * 2 + LABEL_SPACE + longest;

    const svg = svgElement("svg", {
      id: "lineage-graph",
      width,
      height,
      viewBox: `0 0 ${width} ${height}`,
      role: "group",
      "aria-labelledby": "lineage-heading lineage-caption",
      "data-nodes": nodes.size,
      "data-edges": edges.length,
    });
    const defs = svgElement("defs");
    const marker = svgElement("marker", {
      id: "arrow",
      viewBox: "0 0 10 10",
      refX: 9,
      refY: 5,
      markerWidth: 10,
      markerHeight: 10,
      markerUnits: "userSpaceOnUse", // the same arrowhead on thick and thin edges
      orient: "auto-start-reverse",
    });
    marker.append(svgElement("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrowhead" }));
    defs.append(marker);
    svg.append(defs);

    // Layer captions: how far upstream or downstream of the asset each column is.
    if (!vertical) {
      layers.forEach((_, level) => {
        const distance = level - rootLayer;
        let text = "this asset";
        if (distance < 0) text = `upstream ${-distance}`;
        if (distance > 0) text = `downstream ${distance}`;
        svg.append(
          svgElement("text", {
            class: "layer-label",
            x: MARGIN + level * along + NODE_WIDTH / 2,
            y: MARGIN + 4,
          }, text),
        );
      });
    }

    // Edges leave a card on its far side and enter the next one on its near side; through a
    // channel they run straight, so that long edges read as one line.
    const exitPoint = (id) => {
      const { x, y, w, h } = place.get(id);
      return vertical ? { x: x + w / 2, y: y + h } : { x: x + w, y: y + h / 2 };
    };
    const entryPoint = (id) => {
      const { x, y, w, h } = place.get(id);
      // Stop short of a card's border, so that a thick border never hides the arrowhead.
      const gap = isVirtual(id) ? 0 : ARROW_GAP;
      return vertical ? { x: x + w / 2, y: y - gap } : { x: x - gap, y: y + h / 2 };
    };

    const edgeGroup = svgElement("g", { class: "edges" });
    for (const { parent, child, path } of routes) {
      const start = exitPoint(path[0]);
      let d = `M ${start.x} ${start.y}`;
      for (let i = 0; i + 1 < path.length; i += 1) {
        const from = exitPoint(path[i]);
        const to = entryPoint(path[i + 1]);
        const bend = (vertical ? to.y - from.y : to.x - from.x) / 2;
        const c1 = vertical ? `${from.x} ${from.y + bend}` : `${from.x + bend} ${from.y}`;
        const c2 = vertical ? `${to.x} ${to.y - bend}` : `${to.x - bend} ${to.y}`;
        d += ` C ${c1}, ${c2}, ${to.x} ${to.y}`;
        if (isVirtual(path[i + 1])) {
          const through = exitPoint(path[i + 1]);
          d += ` L ${through.x} ${through.y}`;
        }
      }
      const edge = svgElement("path", {
        d,
        class: `edge${parent === rootId || child === rootId ? " edge--root" : ""}`,
        "marker-end": "url(#arrow)",
        "data-parent": parent,
        "data-child": child,
      });
      edge.append(svgElement("title", {}, `${parent} → ${child}`));
      edgeGroup.append(edge);
    }
    svg.append(edgeGroup);

    const nodeGroup = svgElement("g", { class: "nodes" });
    for (const [id, asset] of nodes) {
      const { x, y } = place.get(id);
      const classification = classificationOf(pick(asset, "classification"));
      const retired = Boolean(pick(asset, "retired"));
      const name = pick(asset, "name") || "";
      const classes = ["node", `node--${classification}`];
      if (retired) classes.push("node--retired");
      if (id === rootId) classes.push("node--root");
      const label = `${name ? `${name}, ` : ""}${id}, ${classification}${retired ? ", retired" : ""}` +
        `${id === rootId ? " (this asset)" : ""}`;
      const link = svgElement("a", {
        href: assetHash(id),
        class: classes.join(" "),
        "data-asset-id": id,
        "data-classification": classification,
        "aria-label": label,
      });
      link.append(svgElement("title", {}, label));
      link.append(svgElement("rect", { x, y, width: NODE_WIDTH, height: NODE_HEIGHT, rx: 8, ry: 8 }));
      const tag = `${classification.toUpperCase()}${retired ? " · RETIRED" : ""}`;
      link.append(svgElement("text", { class: "node__class", x: x + 10, y: y + 16 }, tag));
      link.append(svgElement("text", { class: "node__name", x: x + 10, y: y + 36 }, shorten(name || id)));
      link.append(svgElement("text", { class: "node__id", x: x + 10, y: y + 55 }, shorten(id, 30)));
      nodeGroup.append(link);
    }
    svg.append(nodeGroup);
    container.replaceChildren(svg);
    // Bring the asset itself into view when the graph is larger than its frame.
    const root = place.get(rootId);
    container.scrollLeft = Math.max(0, root.x + root.w / 2 - container.clientWidth / 2);
    container.scrollTop = Math.max(0, root.y + root.h / 2 - container.clientHeight / 2);
  }

  // --- the asset view -----------------------------------------------------------------------

  let searchGeneration = 0;
  let currentAssetId = "";

  function assetHash(assetId) {
    return `#asset=${encodeURIComponent(assetId)}`;
  }

  function renderAsset(asset, assetId) {
    const classification = classificationOf(pick(asset, "classification"));
    const retired = Boolean(pick(asset, "retired"));
    const name = pick(asset, "name");
    $("asset-heading").textContent = name ? `Asset: ${name}` : `Asset ${assetId}`;
    const badges = $("asset-badges");
    badges.replaceChildren(classificationBadge(classification));
    if (retired) badges.append(badge("retired", "retired", "the asset was retired (destroyed)"));
    badges.dataset.classification = classification;

    const parents = asList(pick(asset, "parent_ids"));
    const parentList = parents.length
      ? element("ul", { className: "list-inline" }, parents.map((id) => element("li", {}, [assetLink(id)])))
      : element("span", { className: "empty", text: "none: registered, not derived" });
    $("asset-facts").replaceChildren(
      fact("Asset id", element("span", { className: "mono", text: pick(asset, "asset_id") || assetId })),
      fact("Owner", pick(asset, "owner_id")),
      fact("Classification", classificationBadge(classification)),
      fact("Holders (shared with)", chips(pick(asset, "holder_ids"))),
      fact("Bound to purposes", asList(pick(asset, "bound_purposes")).length ? chips(pick(asset, "bound_purposes")) : "unbound: any purpose"),
      fact("Retired", retired ? "yes — destroyed" : "no"),
      fact("Activity", pick(asset, "activity") || (parents.length ? "" : "registration")),
      fact("Parents", parentList),
      fact("Content digest", hashElement(pick(asset, "content_digest"))),
      fact("Origin event", hashElement(pick(asset, "origin_event_id"))),
    );
  }

  async function fetchLineage(assetId, direction) {
    const nodes = [];
    const edges = [];
    let truncated = false;
    let cursor = null;
    for (let page = 0; page < PAGES_MAX; page += 1) {
      const body = await getJson("/v1/lineage", {
        asset_id: assetId, direction, limit: PAGE_LIMIT, cursor,
      });
      nodes.push(...asList(body.nodes));
      edges.push(...asList(body.edges));
      truncated = truncated || Boolean(body.truncated);
      cursor = body.next_cursor;
      if (!cursor) return { nodes, edges, truncated };
    }
    return { nodes, edges, truncated: true };
  }

  function renderLineage(asset, assetId, upstream, downstream) {
    const nodes = new Map([[assetId, asset]]);
    for (const node of [...upstream.nodes, ...downstream.nodes]) {
      const id = pick(node, "asset_id");
      if (id && !nodes.has(id)) nodes.set(id, node);
    }
    const seen = new Set();
    const edges = [];
    for (const edge of [...upstream.edges, ...downstream.edges]) {
      const parent = pick(edge, "parent");
      const child = pick(edge, "child");
      if (!parent || !child || parent === child) continue;
      const key = JSON.stringify([parent, child]);
      if (seen.has(key)) continue;
      seen.add(key);
      // An edge may name an asset beyond a page or depth limit: show it, unclassified.
      for (const id of [parent, child]) if (!nodes.has(id)) nodes.set(id, { asset_id: id });
      edges.push({ parent, child });
    }
    drawLineage($("lineage-graph-container"), nodes, edges, assetId);
    const others = (list) => list.nodes.filter((node) => pick(node, "asset_id") !== assetId).length;
    const upstreamCount = others(upstream);
    const downstreamCount = others(downstream);
    $("lineage-caption").textContent =
      `${nodes.size} assets and ${edges.length} derivations: ${upstreamCount} upstream, ` +
      `${downstreamCount} downstream of ${assetId}.`;
    const note = $("lineage-note");
    note.hidden = !(upstream.truncated || downstream.truncated);
    note.textContent = note.hidden
      ? ""
      : "The graph is cut at the node's depth or size limit; open an asset at the edge to see further.";
    const rows = edges.map(({ parent, child }) =>
      element("tr", {}, [element("td", {}, [assetLink(parent)]), element("td", {}, [assetLink(child)])]));
    $("lineage-edges").replaceChildren(
      ...(rows.length ? rows : [emptyRow("no derivations", 2)]),
    );
  }

  function describeValue(key, value) {
    const name = snakeCase(key);
    if (Array.isArray(value)) {
      return value.map((v) => describeValue(key, v)).join(", ");
    }
    if (name.includes("classification")) return classificationOf(value);
    if (name.startsWith("operation")) return operationName(value);
    if (name === "outcome") return enumName(value, DISPUTE_OUTCOMES, "DISPUTE_OUTCOME_");
    if (name.endsWith("_ms") && asNumber(value)) return formatTime(value);
    if (name.includes("digest") || name.endsWith("_id") && /^[0-9a-f]{40,}$/i.test(String(value))) {
      return shortHash(value);
    }
    if (value && typeof value === "object") {
      return Object.entries(value).map(([k, v]) => `${k}=${v}`).join(", ");
    }
    return String(value);
  }

  function payloadSummary(payload, assetId) {
    const parts = [];
    for (const [key, value] of Object.entries(payload || {})) {
      if (snakeCase(key) === "asset_id" && value === assetId) continue; // the asset on show
      if (key === "currency") continue; // said with the price
      if (key === "price") {
        parts.push(`price: ${formatPrice(payload)}`);
        continue;
      }
      // The API lists every field, defaults included: say only what the event says.
      if (value === "" || value === false || value === null || value === undefined) continue;
      if (value === 0 || value === "unspecified") continue;
      if (Array.isArray(value) && value.length === 0) continue;
      if (typeof value === "object" && !Array.isArray(value) && Object.keys(value).length === 0) continue;
      parts.push(`${snakeCase(key).replace(/_/g, " ")}: ${describeValue(key, value)}`);
    }
    return parts.join(" · ");
  }

  function renderHistory(history) {
    const list = $("history-list");
    list.replaceChildren();
    if (history.items.length === 0) {
      list.append(element("li", { className: "empty", text: "no events" }));
      return;
    }
    for (const item of history.items) {
      // Each item is an EventView: kind, payload, author, height, log index, times.
      const kind = pick(item, "kind") || "unknown";
      const authorId = pick(pick(item, "author"), "member_id") || "";
      const height = pick(item, "height");
      const logIndex = pick(item, "log_index");
      const eventId = pick(item, "event_id");
      const blockTime = formatTime(pick(item, "block_time_ms"));
      const signedTime = formatTime(pick(item, "timestamp_ms"));
      const entry = element("li", {
        className: `kind--${kindFamily(kind)}`,
        attributes: { "data-kind": kind, "data-event-id": eventId || "" },
      });
      const meta = [
        authorId ? `by ${authorId}` : "",
        height !== undefined ? `height ${height}` : "",
        logIndex !== undefined ? `log index ${logIndex}` : "",
        blockTime ? `committed ${blockTime}` : signedTime ? `signed ${signedTime}` : "",
      ].filter(Boolean).join(" · ");
      const head = element("div", { className: "timeline__head" }, [
        element("span", { className: "timeline__kind", text: humanKind(kind) }),
        element("span", { className: "timeline__meta", text: meta }),
      ]);
      if (eventId) {
        const button = element("button", {
          className: "button--secondary button--small",
          text: "evidence",
          attributes: { type: "button", "aria-label": `Download the evidence for event ${eventId}` },
        });
        button.addEventListener("click", () => {
          void downloadEvidence(
            "/v1/evidence/event", { event_id: eventId }, `evidence-event-${eventId.slice(0, 16)}.json`,
            button, `the evidence for event ${shortHash(eventId)}`,
          );
        });
        head.append(button);
      }
      entry.append(head);
      const summary = payloadSummary(pick(item, "payload"), currentAssetId);
      if (summary) entry.append(element("p", { className: "timeline__detail", text: summary }));
      const payload = pick(item, "payload");
      const caseId = kindFamily(kind) === "supervision"
        ? pick(payload, "case_id") || pick(payload, "caseId") : undefined;
      if (caseId) {
        entry.append(element("p", { className: "timeline__detail" }, [
          element("a", { className: "case-link", text: `open case ${caseId}`,
            attributes: { href: caseHash(caseId) } }),
        ]));
      }
      if (eventId) {
        entry.append(element("p", { className: "timeline__detail" }, ["event ", hashElement(eventId)]));
      }
      list.append(entry);
    }
    if (history.truncated) {
      const text = `showing the first ${history.items.length} events`;
      list.append(element("li", { className: "empty", text }));
    }
  }

  function renderGrants(grants) {
    const body = $("grants-body");
    body.replaceChildren();
    if (grants.items.length === 0) {
      body.append(emptyRow("no grants", 8));
      return;
    }
    const now = Date.now();
    for (const grant of grants.items) {
      const grantId = pick(grant, "grant_id") || "";
      const expires = asNumber(pick(grant, "expires_at_ms"));
      const revoked = Boolean(pick(grant, "revoked"));
      const expired = expires !== null && expires > 0 && expires < now;
      const state = revoked
        ? badge("revoked", "revoked", formatTime(pick(grant, "revoked_at_ms")) || undefined)
        : expired ? badge("expired", "expired") : badge("active", "active");
      const conditions = [];
      if (pick(grant, "no_cross_border")) conditions.push("no cross-border");
      body.append(
        element("tr", { attributes: { "data-grant-id": grantId } }, [
          element("td", { className: "mono", text: grantId }),
          element("td", { text: pick(grant, "grantor_id") || "" }),
          element("td", { text: pick(grant, "grantee_id") || "" }),
          element("td", {}, [chips(pick(grant, "purposes"))]),
          element("td", {}, [chips(pick(grant, "operations"), operationName)]),
          element("td", { text: expires ? formatTime(expires) : "no expiry" }),
          element("td", {}, [chips(conditions)]),
          element("td", {}, [state]),
        ]),
      );
    }
  }

  function formatPrice(offer) {
    const price = asNumber(pick(offer, "price"));
    if (price === null) return "";
    // Prices are in minor units of the currency (fen, cents): shown in major units.
    return `${(price / 100).toFixed(2)} ${pick(offer, "currency") || ""}`.trim();
  }

  function lifeCycleStep(step) {
    // A step is an EventView (from /v1/trades/one) or a LifecycleEntry (from /v1/trades).
    const author = pick(step, "author");
    const authorId = pick(step, "author_id") || (author && pick(author, "member_id")) || "";
    const kind = snakeCase(pick(step, "kind") || "unknown");
    const height = pick(step, "height");
    const time = formatTime(pick(step, "block_time_ms"));
    const eventId = pick(step, "event_id") || "";
    const where = [
      authorId ? `by ${authorId}` : "",
      height !== undefined ? `at height ${height}` : "",
      time,
    ].filter(Boolean).join(", ");
    return element("li", { attributes: { "data-kind": kind, "data-event-id": eventId } }, [
      element("strong", { text: humanKind(kind) }),
      where ? ` ${where} ` : " ",
      eventId ? hashElement(eventId) : null,
    ]);
  }

  function disputeText(dispute) {
    const state = pick(dispute, "resolved")
      ? `resolved: ${enumName(pick(dispute, "outcome"), DISPUTE_OUTCOMES, "DISPUTE_OUTCOME_")}`
      : "open";
    const reason = pick(dispute, "reason");
    return `${pick(dispute, "dispute_id") || ""} (${state})${reason ? ` — ${reason}` : ""}`;
  }

  function renderTrades(trades, details) {
    const list = $("trades-list");
    list.replaceChildren();
    if (trades.items.length === 0) {
      list.append(element("p", { className: "empty", text: "no trades" }));
      return;
    }
    trades.items.forEach((item, position) => {
      const detail = details[position] || {};
      const order = { ...(pick(item, "order") || {}), ...(pick(detail, "order") || {}) };
      const offer = pick(detail, "offer") || {};
      const dispute = pick(detail, "dispute");
      const orderId = pick(order, "order_id") || "";
      const status = orderStatusName(pick(order, "status"));
      const article = element("article", {
        className: "trade",
        attributes: { "data-order-id": orderId, "data-status": status, "aria-label": `Order ${orderId}` },
      });
      article.append(
        element("h3", {}, [
          element("span", { className: "mono", text: orderId }),
          badge(status, `status-${status}`, `order status: ${status}`),
        ]),
      );
      const before = pick(order, "status_before_dispute");
      const digest = pick(order, "delivery_digest");
      article.append(
        element("dl", { className: "facts" }, [
          fact("Offer", pick(order, "offer_id")),
          fact("Seller", pick(order, "seller_id")),
          fact("Buyer", pick(order, "buyer_id")),
          fact("Exchange", pick(order, "exchange_id")),
          fact("Price", formatPrice(offer)),
          fact("Terms", pick(offer, "terms")),
          fact("Delivery digest", digest ? hashElement(digest) : "not delivered"),
          before ? fact("Status before dispute", orderStatusName(before)) : null,
          dispute ? fact("Dispute", disputeText(dispute), "wide") : null,
        ].filter(Boolean)),
      );
      const cycle = asList(pick(detail, "life_cycle")).length
        ? asList(pick(detail, "life_cycle"))
        : asList(pick(item, "life_cycle"));
      if (cycle.length) {
        article.append(element("h4", { className: "visually-hidden", text: `Life cycle of ${orderId}` }));
        article.append(
          element(
            "ol",
            { className: "trade__cycle", attributes: { "aria-label": `Life cycle of ${orderId}` } },
            cycle.map(lifeCycleStep),
          ),
        );
      }
      const button = element("button", {
        className: "button--evidence",
        text: "Download trade evidence",
        attributes: {
          type: "button",
          "data-order-id": orderId,
          "aria-label": `Download the evidence for order ${orderId}`,
        },
      });
      button.addEventListener("click", () => {
        void downloadEvidence(
          "/v1/evidence/trade", { order_id: orderId }, `evidence-trade-${safeName(orderId)}.json`,
          button, `the evidence for order ${orderId}`,
        );
      });
      article.append(
        element("div", { className: "trade__actions" }, [
          button,
          element("span", { className: "hint" }, [
            "Offline: ", element("code", { text: "provledger verify FILE --genesis genesis.json" }),
          ]),
        ]),
      );
      list.append(article);
    });
    if (trades.truncated) {
      const text = `showing the first ${trades.items.length} trades`;
      list.append(element("p", { className: "empty", text }));
    }
  }

  /** Each trade's offer, full life cycle and dispute (/v1/trades/one), for the first few. */
  async function tradeDetails(trades) {
    return Promise.all(
      trades.items.map(async (item, position) => {
        const orderId = pick(pick(item, "order") || {}, "order_id");
        if (!orderId || position >= TRADE_DETAILS_MAX) return null;
        try {
          return await getJson("/v1/trades/one", { order_id: orderId });
        } catch (_) {
          return null; // the list entry alone still says the status and life cycle
        }
      }),
    );
  }

  function setBusy(busy) {
    const button = $("search-form").querySelector("button");
    button.disabled = busy;
    $("results").setAttribute("aria-busy", String(busy));
  }

  async function search(assetId) {
    const generation = ++searchGeneration;
    const status = $("search-status");
    $("search-input").value = assetId;
    if (!currentToken()) {
      showMessage(
        "An access token is needed.",
        "Paste a token above; issue one with provledger token issue --identity FILE --role auditor.",
      );
      $("token-input").focus();
      return;
    }
    status.textContent = `Loading ${assetId}…`;
    setBusy(true);
    try {
      const asset = await getJson("/v1/assets", { asset_id: assetId });
      const [upstream, downstream, history, grants, orders] = await Promise.all([
        fetchLineage(assetId, "upstream"),
        fetchLineage(assetId, "downstream"),
        getAll("/v1/assets/history", { asset_id: assetId }),
        getAll("/v1/grants", { asset_id: assetId }),
        getAll("/v1/trades", { asset_id: assetId }),
      ]);
      const details = await tradeDetails(orders);
      if (generation !== searchGeneration) return; // a newer search started meanwhile
      currentAssetId = assetId;
      $("tab-assets").setAttribute("href", assetHash(assetId));
      clearMessage();
      $("results").hidden = false; // first: the graph measures its frame to centre the asset
      renderAsset(asset, assetId);
      renderLineage(asset, assetId, upstream, downstream);
      renderHistory(history);
      renderGrants(grants);
      renderTrades(orders, details);
      document.title = `${assetId} — provledger explorer`;
      status.textContent = `Showing ${assetId}: ${history.items.length} events, ` +
        `${grants.items.length} grants, ${orders.items.length} trades.`;
    } catch (error) {
      if (generation !== searchGeneration) return;
      status.textContent = "";
      showError(error, `asset ${assetId}`);
      $("results").hidden = true;
      currentAssetId = "";
    } finally {
      if (generation === searchGeneration) setBusy(false);
    }
  }

  // --- evidence downloads -------------------------------------------------------------------

  function safeName(text) {
    return String(text).replace(/[^A-Za-z0-9._-]+/g, "_").slice(0, 80) || "subject";
  }

  function filenameFrom(response, fallback) {
    const header = response.headers.get("Content-Disposition") || "";
    const extended = /filename\*\s*=\s*UTF-8''([^;]+)/i.exec(header);
    if (extended) {
      try {
        return safeName(decodeURIComponent(extended[1]));
      } catch (_) {
        // fall through to the plain name
      }
    }
    const plain = /filename\s*=\s*"?([^";]+)"?/i.exec(header);
    return plain ? safeName(plain[1]) : fallback;
  }

  async function downloadEvidence(path, parameters, fallbackName, button, what) {
    const label = button.textContent;
    button.disabled = true;
    button.textContent = "Preparing…";
    try {
      const response = await request(path, parameters);
      const blob = await response.blob();
      const objectUrl = URL.createObjectURL(blob);
      const download = filenameFrom(response, fallbackName);
      const anchor = element("a", { attributes: { href: objectUrl, download } });
      anchor.hidden = true;
      document.body.append(anchor);
      anchor.click();
      anchor.remove();
      // Revoking at once can cancel the download in some browsers; a minute is plenty.
      setTimeout(() => URL.revokeObjectURL(objectUrl), 60_000);
      showMessage(
        `Downloaded ${what}.`,
        "Verify it offline, trusting only the genesis file: provledger verify FILE --genesis genesis.json",
        "info",
      );
    } catch (error) {
      showError(error, what);
    } finally {
      button.disabled = false;
      button.textContent = label;
    }
  }

  // --- the market: the catalogue of offers (/v1/offers) ---------------------------------------

  const MARKET_LIMIT_DEFAULT = 25;
  const MARKET_LIMIT_MAX = 500; // the API's cap
  const MARKET_FILTERS = [
    "q", "asset_id", "seller_id", "broker_id", "classification", "status", "price_min",
    "price_max", "currency",
  ];
  let marketGeneration = 0;
  let marketLoaded = false;
  let marketCursor = null; // the `cursor` of the page shown (null: the first page)
  let marketNextCursor = null; // the `cursor` of the next page (null: none)
  const marketEarlier = []; // the `cursor` of each page shown before this one

  function marketFilters() {
    const form = $("market-form");
    const filters = {};
    for (const name of MARKET_FILTERS) {
      const value = String(form.elements[name].value || "").trim();
      if (value) filters[name] = value;
    }
    return filters;
  }

  function marketLimit() {
    const value = Number($("market-limit").value);
    return Number.isInteger(value) && value >= 1 && value <= MARKET_LIMIT_MAX
      ? value
      : MARKET_LIMIT_DEFAULT;
  }

  function offerStatusBadge(offer) {
    const status = pick(offer, "status") === "delisted" ? "delisted" : "listed";
    const by = pick(offer, "delisted_by");
    const reason = pick(offer, "delisting_reason");
    const title = status === "delisted"
      ? `delisted${by ? ` by ${by}` : ""}${reason ? `: ${reason}` : ""}`
      : "listed: open to orders";
    return badge(status, status, title);
  }

  function renderOffers(page) {
    const body = $("market-body");
    body.replaceChildren();
    const offers = asList(pick(page, "items"));
    if (offers.length === 0) body.append(emptyRow("no offers match", 9));
    for (const offer of offers) {
      const offerId = pick(offer, "offer_id") || "";
      const assetId = pick(offer, "asset_id") || "";
      const classification = classificationOf(pick(offer, "classification"));
      const broker = pick(offer, "broker_id");
      const status = pick(offer, "status") === "delisted" ? "delisted" : "listed";
      body.append(
        element(
          "tr",
          { attributes: { "data-offer-id": offerId, "data-status": status } },
          [
            element("td", { className: "mono", text: offerId }),
            element("td", { text: pick(offer, "title") || "" }),
            element("td", {}, [
              assetLink(assetId),
              pick(offer, "asset_name") ? element("div", { className: "hint", text: pick(offer, "asset_name") }) : null,
            ]),
            element("td", {}, [classificationBadge(classification)]),
            element("td", { className: "offer-seller", text: pick(offer, "seller_id") || "" }),
            element("td", { className: "offer-broker" }, [
              broker || element("span", { className: "empty", text: "none (exchange listing)" }),
            ]),
            element("td", { text: pick(offer, "exchange_id") || "" }),
            element("td", { className: "offer-price", text: formatPrice(offer) }),
            element("td", {}, [offerStatusBadge(offer)]),
          ],
        ),
      );
    }
    const number = marketEarlier.length + 1;
    $("market-page").textContent = `page ${number}, ${offers.length} offer${offers.length === 1 ? "" : "s"}`;
    $("market-previous").disabled = marketEarlier.length === 0;
    $("market-next").disabled = marketNextCursor === null;
  }

  async function loadOffers(cursor) {
    const generation = ++marketGeneration;
    const status = $("market-status-line");
    if (!currentToken()) {
      showMessage(
        "An access token is needed.",
        "Paste a token above; issue one with provledger token issue --identity FILE --role member.",
      );
      $("token-input").focus();
      return;
    }
    status.textContent = "Loading offers…";
    $("market").setAttribute("aria-busy", "true");
    try {
      const page = await getJson("/v1/offers", { ...marketFilters(), limit: marketLimit(), cursor });
      if (generation !== marketGeneration) return; // a newer search started meanwhile
      clearMessage();
      marketLoaded = true;
      marketCursor = cursor;
      marketNextCursor = pick(page, "next_cursor") || null;
      renderOffers(page);
      status.textContent = marketNextCursor
        ? "More offers follow: see the next page."
        : "These are the last offers that match.";
    } catch (error) {
      if (generation !== marketGeneration) return;
      status.textContent = "";
      showError(error, "the market's offers");
    } finally {
      if (generation === marketGeneration) $("market").setAttribute("aria-busy", "false");
    }
  }

  function searchOffers() {
    marketEarlier.length = 0;
    void loadOffers(null);
  }

  function showPage(page) {
    document.body.dataset.page = page;
    for (const [id, name] of [["tab-assets", "assets"], ["tab-market", "market"]]) {
      if (name === page) $(id).setAttribute("aria-current", "page");
      else $(id).removeAttribute("aria-current");
    }
    $("tab-assets").setAttribute("href", currentAssetId ? assetHash(currentAssetId) : "#assets");
  }

  // --- data customs: missed reports ---------------------------------------------------------

  let customsGeneration = 0;

  function setCustomsState(text, modifier) {
    const pill = $("customs-state");
    pill.textContent = text;
    pill.className = `pill${modifier ? ` pill--${modifier}` : ""}`;
  }

  function renderCustoms(items, truncated) {
    const body = $("customs-body");
    body.replaceChildren();
    for (const item of items) {
      const scope = element("span");
      for (const assetId of asList(pick(item, "asset_ids"))) {
        if (scope.childNodes.length) scope.append(", ");
        scope.append(assetLink(assetId));
      }
      const overdue = asList(pick(item, "overdue_periods")).join(", ");
      body.append(
        element("tr", { attributes: { "data-assessment-id": pick(item, "assessment_id") ?? "" } }, [
          element("td", { text: pick(item, "assessment_id") ?? "" }),
          element("td", { text: pick(item, "recipient_id") ?? "" }),
          element("td", { text: pick(item, "destination_region") ?? "" }),
          element("td", {}, [scope]),
          element("td", { className: "number", text: overdue }),
          element("td", { text: formatTime(pick(item, "next_report_due_ms")) || "—" }),
        ]),
      );
    }
    const count = `${items.length}${truncated ? "+" : ""}`;
    if (items.length === 0) setCustomsState("no missed reports", "ok");
    else setCustomsState(`${count} with missed reports`, "warn");
  }

  async function refreshCustoms() {
    const generation = ++customsGeneration;
    if (!currentToken()) {
      $("customs-body").replaceChildren();
      setCustomsState("a token is needed", "warn");
      return;
    }
    try {
      const { items, truncated } = await getAll("/v1/assessments", { overdue: "true" });
      if (generation === customsGeneration) renderCustoms(items, truncated);
    } catch (error) {
      if (generation !== customsGeneration) return;
      $("customs-body").replaceChildren();
      setCustomsState(describeError(error, "the assessments").title, "bad");
    }
  }

  // --- navigation ---------------------------------------------------------------------------

  function fragmentParameters() {
    return new URLSearchParams(window.location.hash.replace(/^#/, ""));
  }

  /** Take a `#token=` from the address bar into storage, and drop it from the address. */
  function absorbFragmentToken() {
    const parameters = fragmentParameters();
    const token = parameters.get("token");
    if (token === null) return false;
    saveToken(token.trim());
    parameters.delete("token");
    const rest = parameters.toString();
    const { pathname, search } = window.location;
    history.replaceState(null, "", pathname + search + (rest ? `#${rest}` : ""));
    return true;
  }

  function routeFromFragment() {
    const parameters = fragmentParameters();
    if (parameters.has("market")) {
      showPage("market");
      if (!marketLoaded) searchOffers();
      return;
    }
    showPage("assets");
    const assetId = parameters.get("asset");
    if (assetId && assetId !== currentAssetId) void search(assetId);
    const caseId = fragmentParameters().get("case");
    if (caseId && (caseId !== currentCaseId || $("case-view").hidden)) void openCase(caseId);
  }

  // --- cases (GET /v1/cases, /v1/cases/one?case_id=) -----------------------------------------

  let currentCaseId = null;

  function caseHash(caseId) {
    return `#case=${encodeURIComponent(caseId)}`;
  }

  function caseStatusName(value) {
    return enumName(value, {}, "CASE_STATUS_").replace(/ /g, "_") || "unknown";
  }

  async function loadCaseList() {
    const list = $("case-list");
    try {
      const { items, truncated } = await getAll("/v1/cases");
      list.replaceChildren();
      if (items.length === 0) list.append(element("li", { className: "empty", text: "no cases" }));
      for (const record of items) {
        const caseId = pick(record, "case_id") || "";
        list.append(element("li", { className: "chip", attributes: { "data-case-id": caseId } }, [
          element("a", { text: `${caseId} (${humanKind(caseStatusName(pick(record, "status")))})`,
            attributes: { href: caseHash(caseId) } }),
        ]));
      }
      if (truncated) {
        list.append(element("li", { className: "empty", text: "more cases than shown: open one by its id" }));
      }
    } catch (error) {
      list.replaceChildren(element("li", { className: "empty", text: "cases not loaded" }));
      if (!(error instanceof ApiError)) showError(error, "the list of cases");
    }
  }

  async function openCase(caseId) {
    currentCaseId = caseId;
    try {
      const body = await getJson("/v1/cases/one", { case_id: caseId });
      if (currentCaseId !== caseId) return; // another case was asked for meanwhile
      renderCase(body, caseId);
      clearMessage();
      $("cases").scrollIntoView();
    } catch (error) {
      $("case-view").hidden = true;
      showError(error, `case ${caseId}`);
    }
  }

  function renderCase(body, caseId) {
    const record = pick(body, "case") || {};
    const status = caseStatusName(pick(record, "status"));
    const final = Boolean(pick(body, "final"));
    $("case-heading").textContent = `Case ${caseId}`;
    const badges = $("case-badges");
    badges.replaceChildren(badge(humanKind(status), "case", `status: ${status}`));
    badges.dataset.status = status;
    if (final) badges.append(badge("final", "final", "nothing can change this case any more"));
    const ruling = pick(record, "ruling") || {};
    const deadline = formatTime(pick(body, "appeal_deadline_ms"));
    $("case-facts").replaceChildren(
      fact("Parties", chips(pick(record, "parties"))),
      fact("Opened by", pick(record, "opened_by")),
      fact("Opened", formatTime(pick(record, "opened_at_ms"))),
      fact("Steps", pick(record, "steps")),
      fact("Ruled by", pick(record, "ruled_by")),
      fact("Outcome", pick(ruling, "outcome") ? humanKind(String(pick(ruling, "outcome"))) : ""),
      fact("Appeal window closes", deadline),
      fact("Appealed by", pick(record, "appellant_id")),
    );
    const complaints = $("case-complaints");
    complaints.replaceChildren();
    for (const item of asList(pick(body, "complaints"))) {
      const complaint = pick(item, "complaint") || {};
      const subject = `${humanKind(String(pick(complaint, "subject_kind") || ""))} ${pick(complaint, "subject_id") || ""}`;
      complaints.append(element("li", {
        attributes: { "data-complaint-id": pick(complaint, "complaint_id") || "" },
        text: `${pick(complaint, "complaint_id")}: ${pick(item, "complainant_id")} against ` +
          `${pick(complaint, "respondent_id")} about ${subject}` +
          (pick(complaint, "category") ? ` (${pick(complaint, "category")})` : ""),
      }));
    }
    const timeline = $("case-timeline");
    timeline.replaceChildren();
    for (const entry of asList(pick(body, "timeline"))) {
      const kind = pick(entry, "kind") || "unknown";
      const meta = [
        `height ${pick(entry, "height")}`,
        `log index ${pick(entry, "log_index")}`,
        formatTime(pick(entry, "time_ms")),
      ].filter(Boolean).join(" · ");
      timeline.append(element("li", {
        className: `kind--${kindFamily(kind)}`,
        attributes: { "data-kind": kind, "data-event-id": pick(entry, "event_id") || "" },
      }, [
        element("div", { className: "timeline__head" }, [
          element("span", { className: "timeline__kind", text: humanKind(kind) }),
          element("span", { className: "timeline__meta", text: meta }),
        ]),
        element("p", { className: "timeline__detail case-summary", text: pick(entry, "summary") }),
      ]));
    }
    $("case-view").hidden = false;
  }

  function navigateTo(assetId) {
    if (window.location.hash === assetHash(assetId)) void search(assetId); // same asset again: reload
    else window.location.hash = assetHash(assetId).slice(1);
  }

  function start() {
    absorbFragmentToken();
    $("token-input").value = currentToken();

    $("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      saveToken($("token-input").value.trim());
      clearMessage();
      void refreshHealth();
      void loadCaseList();
      void refreshCustoms();
      if (currentCaseId) void openCase(currentCaseId);
      if (document.body.dataset.page === "market") void loadOffers(marketCursor);
      else if (currentAssetId) void search(currentAssetId);
      else routeFromFragment();
    });
    $("market-form").addEventListener("submit", (event) => {
      event.preventDefault();
      searchOffers();
    });
    $("market-form").addEventListener("reset", () => {
      setTimeout(searchOffers, 0); // after the browser has cleared the fields
    });
    $("market-next").addEventListener("click", () => {
      if (marketNextCursor === null) return;
      marketEarlier.push(marketCursor);
      void loadOffers(marketNextCursor);
    });
    $("market-previous").addEventListener("click", () => {
      if (marketEarlier.length === 0) return;
      void loadOffers(marketEarlier.pop());
    });
    $("token-clear").addEventListener("click", () => {
      saveToken("");
      clearMessage();
      void refreshHealth();
      void refreshCustoms();
    });
    $("search-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const assetId = $("search-input").value.trim();
      if (!assetId) return;
      if (!IDENTIFIER_PATTERN.test(assetId)) {
        showMessage(
          `"${assetId}" is not an asset id.`,
          "An asset id starts with a letter or digit and holds only letters, digits and . _ : / @ + -",
        );
        $("search-input").focus();
        return;
      }
      navigateTo(assetId);
    });
    $("case-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const caseId = $("case-input").value.trim();
      if (!caseId) return;
      if (!IDENTIFIER_PATTERN.test(caseId)) {
        showMessage(`"${caseId}" is not a case id.`,
          "A case id starts with a letter or digit and holds only letters, digits and . _ : / @ + -");
        return;
      }
      if (window.location.hash === caseHash(caseId)) void openCase(caseId);
      else window.location.hash = caseHash(caseId).slice(1);
    });
    void loadCaseList();
    $("download-case").addEventListener("click", (event) => {
      if (!currentCaseId) return;
      void downloadEvidence(
        "/v1/evidence/case", { case_id: currentCaseId },
        `evidence-case-${safeName(currentCaseId)}.json`, event.currentTarget,
        `the case file of ${currentCaseId}`,
      );
    });
    $("download-lineage").addEventListener("click", (event) => {
      if (!currentAssetId) return;
      void downloadEvidence(
        "/v1/evidence/lineage", { asset_id: currentAssetId },
        `evidence-lineage-${safeName(currentAssetId)}.json`, event.currentTarget,
        `the lineage evidence for ${currentAssetId}`,
      );
    });
    window.addEventListener("hashchange", () => {
      const hadToken = absorbFragmentToken();
      if (hadToken) void refreshHealth();
      if (hadToken) void refreshCustoms();
      routeFromFragment();
    });
    // A safety net: say so if anything still escapes (the test suite also watches for it).
    window.addEventListener("unhandledrejection", (event) => {
      showError(event.reason, "this page");
    });
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) void refreshHealth();
    });

    void refreshHealth();
    void refreshCustoms();
    scheduleHealth();
    routeFromFragment();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
