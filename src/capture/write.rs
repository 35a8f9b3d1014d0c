//! Writing captures (pcap and pcapng), for the synthesizer and for saving live traffic.
