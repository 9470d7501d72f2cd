BaJx©°GY¸[ÁÒó›(ieV|LÍƒ=TYÓ9p°ÈFÛÙ»n“.7d{uºàPL
[Q]§CtÔzV!&É8•¾QâU1ŽÔ%+1”>7XtkáÉ³ÇÖ/¶;Ò“>Ô7PÜôY)Pkv¸‚>Òx‡mçAå»QB,