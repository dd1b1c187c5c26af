// Render .glb/.gltf files with three.js in headless Chromium (SwiftShader WebGL2): one browser for all files.
// Usage: node tools/render_gltf.mjs --out DIR [--size 256x192] [--chromium PATH] FILE...
// For each FILE it writes DIR/<index>-<name>.png and prints one JSON line per file on stdout:
//   {file, png, ok, error, vertexCount, triangleCount, meshCount, bbox:{min,max}, screenRect, loadMs, renderMs}
// then a final {"summary": {...}} line. Exit status 1 when any file failed to load or render.
//
// The camera is orthographic and looks down -Z at the scene's bounding box (our reliefs lie in the XY plane,
// image up = +Y, Z toward the viewer), so a texture pixel lands where it sits in the photo; screenRect is
// the bbox's XY extent in screenshot pixels [x0, y0, x1, y1] (y down) so that a caller can crop to the relief.
// Unlit materials (KHR_materials_unlit) show the texture colours as they are; lit ones get a fixed ambient +
// directional light. Decoders come from node_modules/three (meshopt, Draco), never a CDN.
import http from 'node:http';
import { readFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const THREE_DIR = path.join(ROOT, 'node_modules', 'three');
// --use-angle=swiftshader + --enable-unsafe-swiftshader: explicit software WebGL (the silent fallback is
// deprecated); --use-gl=swiftshader would break WebGL. See shared notes "Real clients, headless".
const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--no-first-run', '--disable-dev-shm-usage', '--use-angle=swiftshader', '--enable-unsafe-swiftshader',
];
const MIME = {
  '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm',
  '.glb': 'model/gltf-binary', '.gltf': 'model/gltf+json', '.bin': 'application/octet-stream',
  '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.webp': 'image/webp', '.ktx2': 'image/ktx2',
};

function parseArgs(argv) {
  const opts = { out: null, width: 256, height: 192, chromium: '/usr/bin/chromium', files: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--out') opts.out = argv[++i];
    else if (a === '--size') {
      const m = /^(\d+)x(\d+)$/.exec(argv[++i] || '');
      if (!m) throw new Error(`--size: expected WxH, e.g. 256x192, got ${argv[i]}`);
      [opts.width, opts.height] = [Number(m[1]), Number(m[2])];
    }
    else if (a === '--chromium') opts.chromium = argv[++i];
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else opts.files.push(path.resolve(a));
  }
  if (!opts.out || opts.files.length === 0) throw new Error('usage: render_gltf.mjs --out DIR [--size WxH] FILE...');
  return opts;
}

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8">
<style>html,body{margin:0;padding:0;overflow:hidden;background:#000}canvas{display:block}</style>
<script type="importmap">
{"imports": {"three": "/three/build/three.module.js", "three/addons/": "/three/examples/jsm/"}}
</script>
</head><body>
<script type="module">
import * as THREE from 'three';
import { GLTFLoader } from 'three/addons/loaders/GLTFLoader.js';
import { DRACOLoader } from 'three/addons/loaders/DRACOLoader.js';
import { MeshoptDecoder } from 'three/addons/libs/meshopt_decoder.module.js';

const renderer = new THREE.WebGLRenderer({ antialias: false, preserveDrawingBuffer: true });
renderer.setPixelRatio(1);
renderer.setSize(window.innerWidth, window.innerHeight);
renderer.setClearColor(0x000000, 1);
document.body.appendChild(renderer.domElement);
const draco = new DRACOLoader().setDecoderPath('/three/examples/jsm/libs/draco/gltf/');
const loader = new GLTFLoader().setDRACOLoader(draco).setMeshoptDecoder(MeshoptDecoder);
const frame = () => new Promise((resolve) => requestAnimationFrame(() => resolve()));

window.renderModel = async (url) => {
  const t0 = performance.now();
  const gltf = await loader.loadAsync(url);
  const t1 = performance.now();
  const scene = new THREE.Scene();
  scene.add(gltf.scene);
  scene.add(new THREE.AmbientLight(0xffffff, 0.6));  // lights do nothing to unlit materials
  const sun = new THREE.DirectionalLight(0xffffff, 2.0);
  sun.position.set(-1, 1, 1.5);  // upper left, in front: relief slopes facing it are brighter
  scene.add(sun);
  scene.updateMatrixWorld(true);
  let vertexCount = 0, triangleCount = 0, meshCount = 0;
  scene.traverse((o) => {
    if (!o.isMesh) return;
    meshCount++;
    const g = o.geometry;
    vertexCount += g.attributes.position.count;
    triangleCount += (g.index ? g.index.count : g.attributes.position.count) / 3;
  });
  const box = new THREE.Box3().setFromObject(gltf.scene, true);
  const w = window.innerWidth, h = window.innerHeight;
  const size = box.getSize(new THREE.Vector3()), centre = box.getCenter(new THREE.Vector3());
  // fit the XY extent with a 5% margin, keeping the canvas aspect
  const halfH = 0.5 * Math.max(size.y, size.x * h / w) * 1.05, halfW = halfH * w / h;
  const depth = Math.max(size.z, 1e-6);
  const camera = new THREE.OrthographicCamera(-halfW, halfW, halfH, -halfH, 0.01 * depth, 3 * depth + 1);
  camera.position.set(centre.x, centre.y, box.max.z + depth + 0.5);
  camera.lookAt(centre.x, centre.y, centre.z);
  renderer.render(scene, camera);
  await frame();
  const t2 = performance.now();
  const gl = renderer.getContext();
  const toPx = (x, y) => [(x - (centre.x - halfW)) / (2 * halfW) * w, ((centre.y + halfH) - y) / (2 * halfH) * h];
  const result = {
    vertexCount, triangleCount, meshCount,
    bbox: { min: box.min.toArray(), max: box.max.toArray() },
    screenRect: [...toPx(box.min.x, box.max.y), ...toPx(box.max.x, box.min.y)],
    loadMs: t1 - t0, renderMs: t2 - t1, glError: gl.getError(),
  };
  // free GPU memory before the next file: one page renders them all
  scene.traverse((o) => {
    if (o.geometry) o.geometry.dispose();
    if (o.material) for (const v of Object.values(o.material)) if (v && v.isTexture) v.dispose();
    if (o.material) o.material.dispose();
  });
  return result;
};
const gl = renderer.getContext();
const info = gl.getExtension('WEBGL_debug_renderer_info');
window.__webgl = {
  version: gl.getParameter(gl.VERSION),
  renderer: info ? gl.getParameter(info.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER),
};
window.__ready = true;
</script></body></html>`;

function serve(files) {
  // /three/... -> node_modules/three; /f/<i>/<name> -> the folder of files[i] (so a .gltf finds its .bin/texture)
  const dirs = files.map((f) => path.dirname(f));
  const server = http.createServer(async (req, res) => {
    const url = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    if (url === '/' || url === '/index.html') {
      res.writeHead(200, { 'content-type': 'text/html' });
      return res.end(PAGE);
    }
    let base = null, rel = null, m;
    if (url.startsWith('/three/')) [base, rel] = [THREE_DIR, url.slice('/three/'.length)];
    else if ((m = /^\/f\/(\d+)\/(.+)$/.exec(url)) && dirs[Number(m[1])]) [base, rel] = [dirs[Number(m[1])], m[2]];
    const target = base && path.resolve(base, rel);
    if (!target || !target.startsWith(base + path.sep)) {  // nothing outside the served folders
      res.writeHead(404);
      return res.end();
    }
    try {
      const body = await readFile(target);
      res.writeHead(200, { 'content-type': MIME[path.extname(target).toLowerCase()] || 'application/octet-stream' });
      res.end(body);
    } catch {
      res.writeHead(404);
      res.end();
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const { chromium } = await import('playwright-core');
  await mkdir(opts.out, { recursive: true });
  const server = await serve(opts.files);
  const origin = `http://127.0.0.1:${server.address().port}`;
  const t0 = Date.now();
  const browser = await chromium.launch({ executablePath: opts.chromium, headless: true, args: CHROMIUM_ARGS });
  let failed = 0;
  try {
    const page = await browser.newPage({ viewport: { width: opts.width, height: opts.height }, deviceScaleFactor: 1 });
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    page.on('console', (msg) => { if (msg.type() === 'error') pageErrors.push(msg.text()); });
    await page.goto(origin + '/');
    await page.waitForFunction(() => window.__ready === true, null, { timeout: 60000 });
    const webgl = await page.evaluate(() => window.__webgl);
    for (const [i, file] of opts.files.entries()) {
      const png = path.join(path.resolve(opts.out), `${i}-${path.basename(file)}.png`);
      pageErrors.length = 0;
      const line = { file, png: null, ok: false, error: null };
      try {
        const url = `${origin}/f/${i}/${encodeURIComponent(path.basename(file))}`;
        Object.assign(line, await page.evaluate((u) => window.renderModel(u), url));
        await page.screenshot({ path: png, type: 'png' });
        line.png = png;
        line.ok = line.glError === 0 && pageErrors.length === 0;
      } catch (e) {
        line.error = String(e.message || e).split('\n')[0];
      }
      if (pageErrors.length) line.pageErrors = [...pageErrors];
      if (!line.ok) failed++;
      process.stdout.write(JSON.stringify(line) + '\n');
    }
    const summary = { files: opts.files.length, failed, webgl, wallMs: Date.now() - t0 };
    process.stdout.write(JSON.stringify({ summary }) + '\n');
  } finally {
    await browser.close();
    server.close();
  }
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  process.stderr.write(`render_gltf: ${e.stack || e}\n`);
  process.exit(2);
});
