import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { SelfcareApp } from './my/SelfcareApp';
import './styles.css';

// One bundle, two audiences: cardholders under /my, operators everywhere else.
const isSelfcare = location.pathname === '/my' || location.pathname.startsWith('/my/');
createRoot(document.getElementById('root')!).render(<StrictMode>{isSelfcare ? <SelfcareApp /> : <App />}</StrictMode>);
