// Vite config for the Canopy web UI.
//
// `npx vite build` writes dist/ (relative asset paths; the binary serves it at `/`).
// Development:
//   CANOPY_API=http://127.0.0.1:8080 npx vite        proxy /api to a running `canopy serve`
//   CANOPY_MOCK_MESH=/tmp/acme npx vite               dev-only mock API backed by the canopy CLI
//                                                     (see mock/README.md; never part of dist)
import { defineConfig } from 'vite';

export default defineConfig(async ({ command }) => {
  const plugins = [];
  if (command === 'serve' && process.env.CANOPY_MOCK_MESH) {
    const { canopyMock } = await import('./mock/canopy-mock.js');
    plugins.push(canopyMock({ mesh: process.env.CANOPY_MOCK_MESH, bin: process.env.CANOPY_BIN }));
  }
  const jsx = { runtime: 'automatic', importSource: 'preact' };
  return {
    base: './',
    plugins,
    oxc: { jsx },
    // The dependency scanner of the dev server has its own JSX settings.
    optimizeDeps: { rolldownOptions: { transform: { jsx: { ...jsx } } } },
    build: {
      outDir: 'dist',
      assetsDir: 'assets',
      sourcemap: false,
      target: 'es2022',
      chunkSizeWarningLimit: 1200,
    },
    server: {
      host: '127.0.0.1',
      proxy: process.env.CANOPY_API ? { '/api': process.env.CANOPY_API } : undefined,
    },
  };
});
